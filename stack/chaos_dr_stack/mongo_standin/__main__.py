import sys

from chaos_dr_stack.mongo_standin.cli import main

sys.exit(main())
