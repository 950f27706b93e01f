import sys

from stack.loadgen.cli import main

sys.exit(main())
