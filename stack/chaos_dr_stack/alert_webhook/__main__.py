import sys

from chaos_dr_stack.alert_webhook.cli import main

sys.exit(main())
