import sys

from chaos_dr_stack.backup.cli import main

sys.exit(main())
