"""``python -m chaos_dr_stack.mongo_standin``: the SecantusDB server as the single member of a MongoDB replica set.

Where a registry serves ``mongo:8`` the kind target runs MongoDB itself. Where none answers, the offline overlay
(``deploy/kind/offline``) runs this in MongoDB's place, behind the same Service, the same volume and the same
replica-set URI (``mongodb://mongo-0.mongo...:27017/?replicaSet=rs0``)::

    serve --replica-set rs0 --member-host mongo-0.mongo.app.svc.cluster.local:27017 --dbpath /data/db
    ready                      exit 0 when the server on --host is a writable primary (the readiness probe)
    live                       exit 0 when its storage answers listDatabases (the liveness probe)
    check-member --host H --replica-set rs0
                               wait until H answers as that set's primary (the init Job: nothing to initiate)

SecantusDB is a single-node replica set from its first start, so MongoDB's ``rs.initiate`` has no counterpart.
Its ``hello`` names the member the way ``rs.initiate`` names a mongod member: ``--member-host``, the address
clients outside this pod reach it at (drivers connect to the hosts ``hello`` lists, not to the seed).
Exit codes: 0 ok; 1 not ready, not live, or not the expected member; 2 bad arguments.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError
from secantus.server import SecantusDBServer

log = logging.getLogger("chaos_dr_stack.mongo_standin")

EXIT_NOT_READY = 1


class ReplicaSetMember(SecantusDBServer):
    """SecantusDB listening on every interface while ``hello`` names the member as ``member_host``."""

    def __init__(self, *, member_host: str, **kwargs) -> None:
        super().__init__(**kwargs)
        host, _, port = member_host.rpartition(":")
        self._member_address = (host, int(port))

    @property
    def address(self) -> tuple[str, int]:
        if self._socket is None:
            raise RuntimeError("server is not started")
        return self._member_address


def member_host(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m chaos_dr_stack.mongo_standin",
                                  description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run SecantusDB as the replica set's single member")
    serve.add_argument("--replica-set", required=True, help="the set's name, as in the clients' replicaSet=")
    serve.add_argument("--member-host", required=True, type=member_host,
                       help="HOST:PORT that hello names as the member (what rs.initiate would name)")
    serve.add_argument("--port", type=int, default=27017)
    serve.add_argument("--dbpath", default="/data/db", help="storage directory (the PVC); reopened intact")
    serve.add_argument("--cache-size", default="256M", help="WiredTiger cache, as secantusd-py --cache-size")
    ready = commands.add_parser("ready", help="exit 0 when the server is a writable primary")
    ready.add_argument("--host", default="127.0.0.1:27017")
    ready.add_argument("--timeout", type=float, default=5.0, help="seconds")
    live = commands.add_parser("live", help="exit 0 when the server's storage answers listDatabases",
                               description="The liveness probe. SecantusDB was once seen to deadlock in its storage "
                               "engine while it still accepted connections and answered ping; listDatabases needs the storage lock.")
    live.add_argument("--host", default="127.0.0.1:27017")
    live.add_argument("--timeout", type=float, default=5.0, help="seconds")
    check = commands.add_parser("check-member", help="wait until HOST answers as the set's writable primary")
    check.add_argument("--host", required=True, type=member_host)
    check.add_argument("--replica-set", required=True)
    check.add_argument("--timeout", type=float, default=300.0, help="seconds to keep trying")
    return top


def hello(host: str, timeout: float) -> dict:
    return admin_command(host, timeout, "hello")


def admin_command(host: str, timeout: float, name: str, **arguments) -> dict:
    milliseconds = int(timeout * 1000)
    client = MongoClient(f"mongodb://{host}/?directConnection=true", serverSelectionTimeoutMS=milliseconds,
                         connectTimeoutMS=milliseconds, socketTimeoutMS=milliseconds)
    try:
        return client.admin.command(name, **arguments)
    finally:
        client.close()


def serve(args: argparse.Namespace) -> int:
    server = ReplicaSetMember(member_host=args.member_host, host="0.0.0.0", port=args.port,
                              storage_path=args.dbpath, replica_set_name=args.replica_set,
                              cache_size=args.cache_size)

    def stop(signum, frame) -> None:
        server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log.info("SecantusDB serving replica set %s as member %s (port %d, data in %s)",
             args.replica_set, args.member_host, args.port, args.dbpath)
    server.wait()
    return 0


def ready(args: argparse.Namespace) -> int:
    try:
        reply = hello(args.host, args.timeout)
    except PyMongoError as exc:
        print(f"not ready: {args.host}: {exc}", file=sys.stderr)
        return EXIT_NOT_READY
    if not reply.get("isWritablePrimary"):
        print(f"not ready: {args.host} is not a writable primary", file=sys.stderr)
        return EXIT_NOT_READY
    return 0


def live(args: argparse.Namespace) -> int:
    try:
        admin_command(args.host, args.timeout, "listDatabases", nameOnly=True)
    except PyMongoError as exc:
        print(f"not live: {args.host}: listDatabases did not answer within {args.timeout:g} s: {exc}",
              file=sys.stderr)
        return EXIT_NOT_READY
    return 0


def check_member(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            reply = hello(args.host, 5.0)
        except PyMongoError as exc:
            problem = f"{args.host} does not answer ({exc})"
        else:
            if reply.get("setName") != args.replica_set:
                problem = f"{args.host} is in replica set {reply.get('setName')!r}, not {args.replica_set!r}"
            elif reply.get("hosts") != [args.host] or not reply.get("isWritablePrimary"):
                problem = f"{args.host} names the members {reply.get('hosts')} (primary: {reply.get('primary')})"
            else:
                print(f"replica set {args.replica_set} ready: {args.host} is its writable primary "
                      "(SecantusDB: a single-node replica set from its first start, nothing to initiate)")
                return 0
        if time.monotonic() >= deadline:
            print(f"check-member: {problem}", file=sys.stderr)
            return EXIT_NOT_READY
        print(f"waiting: {problem}", flush=True)
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return {"serve": serve, "ready": ready, "live": live, "check-member": check_member}[args.command](args)
