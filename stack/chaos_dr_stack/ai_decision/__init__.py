"""The AI decision service: asks an LLM chain (OpenAI → Groq → Together) for a trading decision, with per-provider
timeouts, circuit breakers, Retry-After, a cache and a conservative fallback, and cost controls
(docs/local-stack-contract.md, "AI decision service")."""
