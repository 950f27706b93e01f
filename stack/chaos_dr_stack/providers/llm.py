"""The LLM providers' OpenAI-compatible chat completions API (OpenAI, Groq, Together)."""
from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chaos_dr_stack.providers import market
from chaos_dr_stack.providers.catalogue import LLM_BASE_PATHS, MODELS

TICKER = re.compile(r"\b[A-Z]{1,5}\b")
MOMENTUM_THRESHOLD = 0.001
"""A 0.1 % move over five minutes is a trend worth a buy or a sell; less is noise, so hold."""


def llm_error(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def tokens(text: str) -> int:
    """The usual rule of thumb for English text: about four characters a token."""
    return max(1, math.ceil(len(text) / 4))


def decide(symbol: str | None, now: float) -> dict:
    """The simulated model's answer: a trend call on the symbol's last five minutes, fixed within a minute."""
    if symbol is None:
        return {"decision": "hold", "confidence": 0.5, "reason": "no ticker symbol in the request"}
    minute = math.floor(now / 60) * 60
    move = market.momentum(symbol, minute)
    decision = "buy" if move > MOMENTUM_THRESHOLD else "sell" if move < -MOMENTUM_THRESHOLD else "hold"
    confidence = round(min(0.95, 0.5 + abs(move) * 50), 2)
    return {"decision": decision, "confidence": confidence,
            "reason": f"{symbol} moved {move * 100:+.2f}% over the last 5 minutes"}


def llm_router(clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter()

    for provider, base in LLM_BASE_PATHS.items():
        _add_routes(router, provider, base, clock)
    return router


def _add_routes(router: APIRouter, provider: str, base: str, clock: Callable[[], float]) -> None:
    # One closure per provider: a default argument would become a query parameter in FastAPI's eyes.
    async def models() -> dict:
        created = 1_700_000_000
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": provider} for m in MODELS[provider]
        ]}

    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return llm_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return llm_error(400, "'messages' is a required property and must be a non-empty array", "invalid_value")
        model = body.get("model")
        if model not in MODELS[provider]:
            return llm_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                             "model_not_found")
        texts = [m.get("content") or "" for m in body["messages"] if isinstance(m, dict)]
        user = [m.get("content") or "" for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        found = TICKER.search(str(user[-1])) if user else None
        now = clock()
        content = json.dumps(decide(found.group(0) if found else None, now))
        prompt_tokens = tokens("".join(str(t) for t in texts))
        completion_tokens = tokens(content)
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(now),
            "model": model,
            "system_fingerprint": f"fp_sim_{provider}",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    router.add_api_route(f"{base}/models", models, methods=["GET"])
    router.add_api_route(f"{base}/chat/completions", chat_completions, methods=["POST"])
