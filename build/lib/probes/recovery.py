"""How long the processor takes to recover from the newest fault in the run's timeline."""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded
from probes._clients import target_and_database
from probes._partitions import active_partitions, first_write_per_partition
from probes.measure import recovery_seconds

__all__ = ["processor_recovery_seconds"]

POLL_SECONDS = 0.1
"""Resolution of the replica-ready observation; partition resumption comes from stored timestamps."""
STORE_POLL_SECONDS = 0.5
"""How often the stored events are read for resumed partitions: their times are the stored ones whatever the
poll, and each read takes the database from the API it serves."""


def processor_recovery_seconds(
    timeout: float = 60.0, configuration: Configuration = None, secrets: Secrets = None
) -> float:
    """Seconds from this run's newest ``fault.kill`` until the killed replica is ready again (a new
    process) AND every partition that was being processed before the fault has had a new event written.

    The experiment's tolerance judges the number against the 30 s platform failover budget.
    Before the method has run it returns 0.0: nothing has been broken yet. After it, raises NoData when no kill
    was recorded or no partition was active, and BudgetExceeded, naming what had not
    recovered, after ``timeout`` seconds.
    """
    timeout = number("timeout", timeout, greater_than=0)
    kills = timeline.faults_of_this_run({"fault.kill"}, configuration, "nothing to measure recovery from")
    if not kills:
        return 0.0
    fault = kills[-1]
    fault_at, killed_name, killed_pid = float(fault["at"]), fault["instance"], fault.get("pid")

    with target_and_database(configuration, secrets) as (target, db):
        events = db["events"]
        partitions = active_partitions(events, fault_at, "the kill")
        resumed: dict[str, float | None] = {f"{t}/{p}": None for t, p in partitions}
        replica_ready_at: float | None = None
        next_store_read = 0.0
        while True:
            now = time.time()
            if replica_ready_at is None:
                replica = next((i for i in target.instances("processor") if i.name == killed_name), None)
                if replica is not None and replica.ready and replica.pid != killed_pid:
                    replica_ready_at = replica.ready_at or now
            if None in resumed.values() and time.monotonic() >= next_store_read:
                next_store_read = time.monotonic() + STORE_POLL_SECONDS
                firsts = first_write_per_partition(events, fault_at)
                for (topic, partition), key in zip(partitions, list(resumed)):
                    if resumed[key] is None:
                        resumed[key] = firsts.get((topic, partition))
            seconds = recovery_seconds(fault_at, replica_ready_at, resumed)
            if seconds is not None:
                seconds = round(seconds, 3)
                timeline.record(
                    "observation.recovered", configuration, instance=killed_name, seconds=seconds,
                    replica_ready_after=round(replica_ready_at - fault_at, 3),
                )
                return seconds
            if now - fault_at > timeout:
                waiting = [k for k, v in resumed.items() if v is None]
                if replica_ready_at is None:
                    waiting.insert(0, f"replica {killed_name} not ready")
                raise BudgetExceeded(
                    f"processor not recovered {timeout} s after killing {killed_name}; still waiting for: "
                    + ", ".join(waiting)
                )
            time.sleep(POLL_SECONDS)
