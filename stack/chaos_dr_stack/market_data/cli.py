"""``python -m chaos_dr_stack.market_data``: wiring only."""
from __future__ import annotations

import argparse
import re

from prometheus_client import CollectorRegistry

from chaos_dr_stack.market_data.app import COIN, SYMBOL, create_app
from chaos_dr_stack.market_data.failover import FailoverSettings
from chaos_dr_stack.market_data.feeds import Feeds
from chaos_dr_stack.market_data.service import MarketData, MarketDataSettings
from chaos_dr_stack.service_runtime import add_provider_client_arguments, positive, serve, start_logging


def _listed(pattern: re.Pattern, what: str, upper: bool):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(i.strip().upper() if upper else i.strip().lower() for i in text.split(",") if i.strip())
        bad = [i for i in items if not pattern.match(i)]
        if bad:
            raise argparse.ArgumentTypeError(f"not a valid {what}: {', '.join(bad)}")
        return items
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d, f = MarketDataSettings(), FailoverSettings()
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.market_data",
                                description="Quotes with failover Alpaca → Finnhub → Polygon and crypto from CoinGecko, "
                                            "served from a cache kept fresh by a refresh loop.")
    add_provider_client_arguments(p)
    p.add_argument("--symbols", type=_listed(SYMBOL, "symbol", True), default=d.symbols,
                   help=f"watchlist kept fresh (default {','.join(d.symbols)})")
    p.add_argument("--coins", type=_listed(COIN, "coin id", False), default=d.coins,
                   help=f"CoinGecko ids kept fresh (default {','.join(d.coins)})")
    p.add_argument("--refresh-s", type=positive, default=d.refresh_s)
    p.add_argument("--fetch-timeout-s", type=positive, default=d.fetch_timeout_s)
    p.add_argument("--failover-after", type=int, default=f.failover_after,
                   help="consecutive failed polls before moving down the chain")
    p.add_argument("--recovery-window-s", type=positive, default=f.recovery_window_s,
                   help="how long a higher provider must answer every probe before traffic returns to it")
    p.add_argument("--stale-after-s", type=positive, default=d.stale_after_s)
    p.add_argument("--critical-after-s", type=positive, default=d.critical_after_s)
    args = p.parse_args(argv)
    if args.failover_after < 1:
        p.error(f"--failover-after must be >= 1, got {args.failover_after}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_logging("market-data", args.log_level)
    settings = MarketDataSettings(
        symbols=args.symbols, coins=args.coins, refresh_s=args.refresh_s, fetch_timeout_s=args.fetch_timeout_s,
        stale_after_s=args.stale_after_s, critical_after_s=args.critical_after_s,
        failover=FailoverSettings(failover_after=args.failover_after, recovery_window_s=args.recovery_window_s),
    )
    registry = CollectorRegistry(auto_describe=False)
    service = MarketData(Feeds(args.providers_url, settings.fetch_timeout_s), settings, registry)
    serve(create_app(service, registry), args.host, args.port, on_signal=lambda _sig: None)
    return 0
