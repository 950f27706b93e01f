"""``python -m chaos_dr_stack.ai_decision``: wiring only (settings, the LLM clients, the engine, the server)."""
from __future__ import annotations

import argparse

from chaos_dr_stack.ai_decision.app import create_app
from chaos_dr_stack.ai_decision.breaker import BreakerSettings
from chaos_dr_stack.ai_decision.costs import CostLedger, CostSettings
from chaos_dr_stack.ai_decision.engine import ChainSettings, DecisionEngine
from chaos_dr_stack.ai_decision.llm_client import OpenAIProviders
from chaos_dr_stack.providers.catalogue import LLM_PROVIDERS
from chaos_dr_stack.service_runtime import add_provider_client_arguments, positive, serve, start_logging


def timeouts(text: str) -> dict[str, float]:
    """``openai=4,groq=2.5``: seconds per provider; providers not named keep their default."""
    out = dict(ChainSettings().timeouts)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in LLM_PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r} (expected {', '.join(LLM_PROVIDERS)})")
        try:
            seconds = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: timeout {value!r} is not a number of seconds") from None
        if not 0 < seconds <= 60:
            raise argparse.ArgumentTypeError(f"{name}: timeout must be within (0, 60] seconds, got {seconds:g}")
        out[name] = seconds
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    chain, breaker, costs = ChainSettings(), BreakerSettings(), CostSettings()
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.ai_decision",
                                description="Trading decisions from an LLM chain (OpenAI → Groq → Together) "
                                            "with breakers, fallbacks and cost controls.")
    add_provider_client_arguments(p)
    p.add_argument("--timeouts", type=timeouts, default=dict(chain.timeouts),
                   help="per-provider timeouts in seconds, e.g. openai=4,groq=2.5,together=2.5 (the defaults)")
    p.add_argument("--decision-budget-s", type=positive, default=chain.decision_budget_s,
                   help=f"bound on one decision, all attempts included (default {chain.decision_budget_s:g})")
    p.add_argument("--failure-threshold", type=int, default=breaker.failure_threshold,
                   help="consecutive error answers that open a provider's circuit (a timeout opens it at once)")
    p.add_argument("--cooldown-s", type=positive, default=breaker.cooldown_s,
                   help=f"seconds an open circuit waits before one probe (default {breaker.cooldown_s:g})")
    p.add_argument("--cache-ttl-s", type=positive, default=chain.cache_ttl_s)
    p.add_argument("--daily-budget-usd", type=positive, default=costs.daily_budget_usd)
    p.add_argument("--max-request-cost-usd", type=positive, default=costs.max_request_cost_usd)
    args = p.parse_args(argv)
    if args.failure_threshold < 1:
        p.error(f"--failure-threshold must be >= 1, got {args.failure_threshold}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_logging("ai-decision", args.log_level)
    providers = OpenAIProviders(args.providers_url)
    engine = DecisionEngine(
        providers.ask,
        ChainSettings(timeouts=args.timeouts, decision_budget_s=args.decision_budget_s, cache_ttl_s=args.cache_ttl_s),
        BreakerSettings(failure_threshold=args.failure_threshold, cooldown_s=args.cooldown_s),
        CostLedger(CostSettings(daily_budget_usd=args.daily_budget_usd, max_request_cost_usd=args.max_request_cost_usd)),
    )
    # The clients' connections close with the process; nothing is buffered in them.
    serve(create_app(engine), args.host, args.port, on_signal=lambda _sig: None)
    return 0
