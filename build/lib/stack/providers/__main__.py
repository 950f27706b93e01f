import sys

from stack.providers.cli import main

sys.exit(main())
