"""The AI decision and market data services under provider faults, with their default settings, seen from a client.

    .venv/bin/python bench/provider_services.py --trials 5

Starts the provider simulator, the AI decision service and the market data service as processes on free ports (no
Kafka, no Mongo) and prints one JSON line per measurement:
- ``ai_dead_primary``: OpenAI blackholed; the latency of the first decision (pays one OpenAI timeout) and of the
  next ten (circuit open: straight to Groq).
- ``ai_all_down``: every model blackholed; the latency of the first degraded answer (bounded by the decision
  budget) and of the next ten.
- ``md_failover``: Alpaca blackholed, /quote/AAPL sampled at 10 Hz: seconds from the fault to the first Finnhub
  answer, the oldest quote served meanwhile, and the seconds from the heal back to Alpaca.
- ``md_flapping``: Alpaca at a 50 % error rate for 20 s: moves of the serving provider, oldest quote served.
- ``idle_cpu``: CPU seconds per minute each service burns with no client at all (the refresh loop included).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos_dr_stack.local.ports import free_base_port, wait_until  # noqa: E402

TOKEN_ENV = "GAMEDAY_FAULT_TOKEN"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50": round(statistics.median(values), 3), "p95": round(p95, 3),
            "max": round(max(values), 3)}


class Services:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.base = free_base_port()
        self.token = secrets.token_hex(16)
        self.procs: dict[str, subprocess.Popen] = {}
        self.sim = f"http://127.0.0.1:{self.base + 21}"
        self.ai = f"http://127.0.0.1:{self.base + 22}"
        self.md = f"http://127.0.0.1:{self.base + 23}"
        self.http = httpx.Client(timeout=30)

    def __enter__(self) -> Services:
        self._start("provider-simulator", "chaos_dr_stack.providers", self.base + 21, {TOKEN_ENV: self.token})
        self._start("ai-decision", "chaos_dr_stack.ai_decision", self.base + 22, {}, "--providers-url", self.sim)
        self._start("market-data", "chaos_dr_stack.market_data", self.base + 23, {}, "--providers-url", self.sim)
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _start(self, name: str, module: str, port: int, env: dict, *extra: str) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})

        def up() -> bool:
            try:
                return self.http.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(up, 60, 0.2):
            raise SystemExit(f"{name} did not start; see {self.workdir / (name + '.log')}")

    def fail(self, provider: str, **body) -> None:
        self.http.put(f"{self.sim}/_faults/{provider}", json=body, headers={"X-Gameday-Token": self.token}).raise_for_status()

    def heal(self) -> None:
        self.http.delete(f"{self.sim}/_faults", headers={"X-Gameday-Token": self.token}).raise_for_status()

    def decide(self, symbol: str) -> tuple[float, dict]:
        t0 = time.monotonic()
        body = self.http.post(f"{self.ai}/decision", json={"symbol": symbol}).json()
        return time.monotonic() - t0, body

    def quote(self) -> dict:
        return self.http.get(f"{self.md}/quote/AAPL").json()

    def serving(self) -> str:
        return self.http.get(f"{self.md}/providers").json()["serving"]


def wait_serving(s: Services, provider: str, timeout: float = 60) -> None:
    if not wait_until(lambda: s.serving() == provider, timeout, 0.2):
        raise SystemExit(f"market data never served from {provider}")


def ai_trials(s: Services, trials: int) -> None:
    for name, providers in (("ai_dead_primary", ("openai",)), ("ai_all_down", ("openai", "groq", "together"))):
        first, later, served = [], [], set()
        for trial in range(trials):
            s.heal()
            # Back on the primary: the breaker's cool-down (10 s) has passed and a probe succeeded.
            if not wait_until(lambda: s.decide("SPY")[1]["provider"] == "openai", 60, 1.0):
                raise SystemExit("the primary did not come back")
            for provider in providers:
                s.fail(provider, mode="timeout", ttl_seconds=120)
            seconds, body = s.decide(f"{name[3:6].upper()}{trial}")
            first.append(seconds)
            served.add(body["provider"])
            for _ in range(10):
                seconds, body = s.decide(f"{name[3:6].upper()}{trial}")
                later.append(seconds)
                served.add(body["provider"])
        print(json.dumps({"measure": name, "first_decision_s": summary(first), "next_decisions_s": summary(later),
                          "served_by": sorted(served)}), flush=True)
    s.heal()


def md_failover(s: Services, trials: int) -> None:
    failovers, oldest, returns = [], [], []
    for _ in range(trials):
        s.heal()
        wait_serving(s, "alpaca")
        time.sleep(2)
        injected = time.monotonic()
        s.fail("alpaca", mode="timeout", ttl_seconds=120)
        switched, worst = None, 0.0
        while time.monotonic() - injected < 8:
            q = s.quote()
            worst = max(worst, q["age_seconds"])
            if switched is None and q["provider"] == "finnhub":
                switched = time.monotonic() - injected
            time.sleep(0.1)
        if switched is None:
            raise SystemExit("finnhub never served during an Alpaca blackhole")
        failovers.append(switched)
        oldest.append(worst)
        healed = time.monotonic()
        s.heal()
        while s.quote()["provider"] != "alpaca":
            time.sleep(0.1)
        returns.append(time.monotonic() - healed)
    print(json.dumps({"measure": "md_failover", "failover_s": summary(failovers), "oldest_quote_s": summary(oldest),
                      "back_to_primary_s": summary(returns)}), flush=True)


def md_flapping(s: Services, seconds: float = 20) -> None:
    s.heal()
    wait_serving(s, "alpaca")
    before = s.http.get(f"{s.md}/providers").json()["failovers"]
    s.fail("alpaca", mode="error", status=503, error_rate=0.5, ttl_seconds=120)
    t0, providers, worst = time.monotonic(), set(), 0.0
    while time.monotonic() - t0 < seconds:
        q = s.quote()
        providers.add(q["provider"])
        worst = max(worst, q["age_seconds"])
        time.sleep(0.1)
    moves = len(s.http.get(f"{s.md}/providers").json()["failovers"]) - len(before)
    print(json.dumps({"measure": "md_flapping", "seconds": seconds, "moves": moves, "served_by": sorted(providers),
                      "oldest_quote_s": round(worst, 3)}), flush=True)
    s.heal()


def idle_cpu(s: Services, seconds: float = 30) -> None:
    start = {name: cpu_seconds(p.pid) for name, p in s.procs.items()}
    time.sleep(seconds)
    print(json.dumps({"measure": "idle_cpu", "seconds": seconds, "cpu_s_per_minute": {
        name: round((cpu_seconds(p.pid) - start[name]) * 60 / seconds, 2) for name, p in s.procs.items()}}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--only", choices=["idle", "md", "ai"], help="run one group of measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-providers-") as tmp, Services(Path(tmp)) as s:
        s.decide("SPY")  # warm up
        if args.only in (None, "idle"):
            idle_cpu(s)
        if args.only in (None, "md"):
            md_failover(s, args.trials)
            md_flapping(s)
        if args.only in (None, "ai"):
            ai_trials(s, args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
