import sys

from chaos_dr_stack.loadgen.cli import main

sys.exit(main())
