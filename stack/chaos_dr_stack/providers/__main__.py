import sys

from chaos_dr_stack.providers.cli import main

sys.exit(main())
