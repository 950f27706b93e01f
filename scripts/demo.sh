#!/usr/bin/env bash
# A small game day: start the local stack, crash a processor replica through `chaos run`, judge the journal
# ourselves (chaos run's exit code is not enough), and always stop the stack.
set -uo pipefail
cd "$(dirname "$0")/.."

base_port="${GAMEDAY_BASE_PORT:-18000}"
run_dir=".gameday/runs/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
export GAMEDAY_CONTROL_URL="http://127.0.0.1:${base_port}"
export GAMEDAY_TIMELINE="$run_dir/timeline.jsonl"

stop_stack() { gameday stack down; }
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gameday stack up --base-port "$base_port" || exit $?

echo
echo "== chaos run experiments/processor-pod-kill.yaml"
chaos --log-file "$run_dir/chaostoolkit.log" run --journal-path "$run_dir/journal.json" \
  --rollback-strategy always experiments/processor-pod-kill.yaml
echo
echo "== verdict (from the journal, not from chaos run's exit code)"
gameday verdict "$run_dir/journal.json"
status=$?
echo "journal, timeline and log: $run_dir"
exit $status
