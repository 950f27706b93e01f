"""Settings every Kafka client of the stack shares."""
from __future__ import annotations

LEADER_DISCOVERY = {"topic.metadata.refresh.interval.ms": 1000}
"""Ask a broker for the partition leaders every second (librdkafka's default is 5 minutes). A broker cut from the
rest of the cluster while clients still reach it keeps answering as the leader it was: nothing tells its clients
that the controller has fenced it and elected other leaders, except fresh metadata from another broker. With the
default, the producers kept every write bound for such a broker until the cut healed (30 s of a 30 s isolation,
38 events failed); refreshed every second, the writes moved to the new leaders 4 to 7 s in, when the controller
fenced the broker, in three runs of seven. In the others a producer stayed on the cut broker: it had published
itself as a partition's leader at a higher leader epoch than the rest of the cluster's, which clients trust
(docs/benchmarks.md, "An isolated broker" and "The wedge")."""
