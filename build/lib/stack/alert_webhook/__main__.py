import sys

from stack.alert_webhook.cli import main

sys.exit(main())
