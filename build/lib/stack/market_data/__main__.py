import sys

from stack.market_data.cli import main

sys.exit(main())
