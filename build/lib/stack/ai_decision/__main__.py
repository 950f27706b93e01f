import sys

from stack.ai_decision.cli import main

sys.exit(main())
