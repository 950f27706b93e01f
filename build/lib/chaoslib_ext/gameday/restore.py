"""``gameday restore``: restore the processor's database from the backup store, from the operator's side.

The backup agent does the work (choose, verify, load, roll forward, set the replay offsets); this module asks the
target for it with the processors' writes frozen, then tells the operator what was restored, what was refused and why,
and what the replay covers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration

EXIT_OK = 0
EXIT_REFUSED = 1
"""No backup could be restored as asked (every candidate corrupt, the named one corrupt, none before the disaster)."""


def run_restore(configuration: Mapping[str, Any], backup_id: str | None, replay: bool, until: float | None,
                say: Callable[[str], None]) -> int:
    with from_configuration(configuration) as target:
        pending = [d for d in target.backups()["disasters"] if not d.get("recovered_by")]
        if pending:
            newest = pending[-1]
            say(f"restoring to just before the disaster the backup agent saw: {newest['kind']} at "
                f"{newest.get('wall')}")
        else:
            say("no disaster pending: restoring to the end of the change log" + (f" (until {until})" if until else ""))
        say("freezing the processors (cut from Kafka), restoring ...")
        try:
            report = target.restore(backup_id=backup_id, until=until, replay=replay)
        except InvalidArgument as exc:
            say(f"restore refused: {exc}")
            return EXIT_REFUSED
    for problem in report.get("fallbacks", []):
        say(f"skipped corrupt backup {problem}")
    if report.get("fallbacks"):
        say(f"fell back to the previous good backup {report['backup_id']}")
    if report.get("history_checked") is False:
        say("warning: the backup agent had not yet checked the history of the database server it restored into "
            "(it restarted moments ago); a disaster on it that the agent had yet to see is not marked recovered, "
            "so check `gameday restore`'s next target point before running it again")
    for stall in report.get("stalls", []):
        say(f"the database stalled during attempt {stall['attempt']} ({stall['error']}); it answered again after "
            f"{stall['answered_after_s']} s and the restore started over")
    counts = ", ".join(f"{n} {c}" for c, n in sorted(report["restored"].items()))
    say(f"restored backup {report['backup_id']} ({counts}) and {report['changes_applied']} logged changes, "
        f"up to {report['restored_until_wall']}")
    replayed = report.get("replay")
    if replayed:
        say(f"replayed {replayed['replayed']} Kafka messages from {replayed['from']} up to the processors' committed "
            f"offsets {replayed['to']}")
        if replayed.get("incomplete"):
            say(f"warning: the replay stopped short on {replayed['incomplete']}: the broker no longer holds those "
                "messages (their retention expired, or the broker lost its data directory since the backup)")
    else:
        say("no replay: events the processors had consumed after the restored point are not in the database")
    say(f"processors cut from Kafka during the restore, resumed at {report['processors_resumed_at']}")
    return EXIT_OK
