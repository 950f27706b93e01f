"""The LLM providers through the official ``openai`` client, one per provider, ``base_url`` at the provider's
OpenAI-compatible API. Client retries are off: the fallback chain is the retry, and a retry inside the client would
spend the decision budget on a provider that already failed."""
from __future__ import annotations

import httpx
import openai

from chaos_dr_stack.ai_decision.engine import Answer, ProviderFailure
from chaos_dr_stack.providers.catalogue import LLM_BASE_PATHS

API_KEY = "sk-simulated"
"""The simulator ignores keys; a real deployment reads them from its secret store."""
CLIENT_TIMEOUT_MARGIN_S = 0.5
"""The client's own timeout sits above the engine's bound, so the engine's is the one that fires (and says so)."""


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from these APIs; the breaker's cool-down applies instead


class OpenAIProviders:
    def __init__(self, providers_url: str):
        base = providers_url.rstrip("/")
        # One connection pool for all three: they are the same simulator here, distinct hosts in production.
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._clients = {
            provider: openai.AsyncOpenAI(
                base_url=base + path, api_key=API_KEY, max_retries=0, http_client=self._http,
            )
            for provider, path in LLM_BASE_PATHS.items()
        }

    async def ask(self, provider: str, model: str, messages: list[dict], timeout_s: float, max_tokens: int) -> Answer:
        try:
            completion = await self._clients[provider].chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                timeout=timeout_s + CLIENT_TIMEOUT_MARGIN_S,
            )
        except openai.APITimeoutError:
            raise ProviderFailure("timeout", slow=True, detail=f"no answer within {timeout_s:.2f} s") from None
        except openai.RateLimitError as exc:
            raise ProviderFailure("rate_limited", retry_after_s=_retry_after(exc.response.headers),
                                  detail="429 Too Many Requests") from None
        except openai.APIStatusError as exc:
            raise ProviderFailure(f"error_{exc.status_code}", detail=f"HTTP {exc.status_code}") from None
        except openai.APIConnectionError as exc:
            raise ProviderFailure("reset", slow=True, detail=f"connection failed ({type(exc.__cause__ or exc).__name__})") from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise ProviderFailure("malformed", detail=f"unreadable response ({type(exc).__name__})") from None
        try:
            content = completion.choices[0].message.content or ""
            usage = completion.usage
            return Answer(content=content, model=completion.model or model,
                          prompt_tokens=int(usage.prompt_tokens), completion_tokens=int(usage.completion_tokens))
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise ProviderFailure("malformed", detail=f"response without choices/usage ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        await self._http.aclose()
