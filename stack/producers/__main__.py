import sys

from stack.producers.cli import main

sys.exit(main())
