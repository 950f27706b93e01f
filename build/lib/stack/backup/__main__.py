import sys

from stack.backup.cli import main

sys.exit(main())
