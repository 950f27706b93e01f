"""The providers the simulator stands in for: their path prefixes and models. Pure data, shared by the simulator
and its clients (the AI decision and market data services), so a prefix is written down in one place."""
from __future__ import annotations

LLM_PROVIDERS = ("openai", "groq", "together")
DATA_PROVIDERS = ("alpaca", "finnhub", "polygon", "coingecko", "newsapi", "gdelt")
PROVIDERS = LLM_PROVIDERS + DATA_PROVIDERS

LLM_BASE_PATHS = {
    "openai": "/openai/v1",
    "groq": "/groq/openai/v1",
    "together": "/together/v1",
}
"""What an OpenAI client's ``base_url`` ends with for each LLM provider (Groq serves its API under /openai/v1)."""

MODELS = {
    "openai": ("gpt-4o", "gpt-4o-mini"),
    "groq": ("mixtral-8x7b-32768", "llama-3.1-8b-instant"),
    "together": ("meta-llama/Llama-3-70b-chat-hf", "meta-llama/Llama-3-8b-chat-hf"),
}
"""Per LLM provider: (the model the AI decision service asks for normally, its cheaper model)."""


def provider_of(path: str) -> str | None:
    """The provider a request path belongs to (its first segment), or None for the simulator's own routes."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in PROVIDERS else None
