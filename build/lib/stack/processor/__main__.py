import sys

from stack.processor.cli import main

sys.exit(main())
