import logging
import os
import sys

from chaos_dr_stack.producers.cli import main

code = main()
# main() has already flushed within its budget and purged what was left. Exit now: tearing down the interpreter
# destroys librdkafka handles, which can still wait on a broker that died with the runner (seen once past 30 s),
# and a SIGTERMed producer must not outlive its stop budget.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
