"""Connections the probes share: MongoDB and Prometheus, with errors mapped to the framework's own."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from chaoslib.types import Configuration, Secrets
from pymongo import MongoClient
from pymongo.database import Database

from chaoslib_ext.errors import NoData
from chaoslib_ext.targets import Target, from_configuration
from chaoslib_ext.targets.prometheus import prometheus_query

__all__ = ["mongo", "prometheus_query", "prometheus_scalar", "target_and_database"]

MONGO_TIMEOUT_MS = 3000
"""Short enough that a dead database fails a probe quickly, long enough for a busy single-threaded server."""


def mongo(target: Target) -> tuple[MongoClient, Database]:
    client: MongoClient = MongoClient(
        target.mongo_uri(), serverSelectionTimeoutMS=MONGO_TIMEOUT_MS, connectTimeoutMS=MONGO_TIMEOUT_MS,
        socketTimeoutMS=10 * MONGO_TIMEOUT_MS,
    )
    return client, client[target.database]


@contextlib.contextmanager
def target_and_database(configuration: Configuration, secrets: Secrets = None) -> Iterator[tuple[Target, Database]]:
    """The configured target and its processor database, both closed on the way out."""
    with from_configuration(configuration, secrets) as target:
        client, db = mongo(target)
        try:
            yield target, db
        finally:
            client.close()


def prometheus_scalar(target: Target, promql: str) -> float:
    """The single value of ``sum(...)``-style query. No series at all is NoData, never zero."""
    result = prometheus_query(target, promql)
    if not result:
        raise NoData(f"Prometheus returned no samples for {promql!r}: the series does not exist (yet)")
    return float(result[0]["value"][1])
