import sys

from chaos_dr_stack.market_data.cli import main

sys.exit(main())
