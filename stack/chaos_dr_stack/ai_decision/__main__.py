import sys

from chaos_dr_stack.ai_decision.cli import main

sys.exit(main())
