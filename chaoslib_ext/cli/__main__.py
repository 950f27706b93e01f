"""``python -m chaoslib_ext.cli``: the ``gameday`` command."""
import sys

from chaoslib_ext.cli import main

sys.exit(main())
