import sys

from chaos_dr_stack.processor.cli import main

sys.exit(main())
