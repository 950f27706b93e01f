"""Settings every Kafka client of the stack shares."""
from __future__ import annotations

LEADER_DISCOVERY = {"topic.metadata.refresh.interval.ms": 1000}
"""Ask a broker for the partition leaders every second (librdkafka's default is 5 minutes). A broker cut from the
rest of the cluster while clients still reach it keeps answering as the leader it was: nothing tells its clients
that the controller has fenced it and elected other leaders, except fresh metadata from another broker. With the
default, the producers kept every write bound for such a broker until the cut healed (30 s of a 30 s isolation,
38 events failed). Refreshing is not enough on its own: librdkafka asks the broker it sent to last, which for a
producer whose partitions that broker led is the cut one, and its answer waits behind the writes it holds. The
producers also drop a connection that leaves a request unanswered (``ProducerSettings.socket_timeout_ms``) and keep
one to every broker (docs/benchmarks.md, "The wedge, explained and fixed")."""
