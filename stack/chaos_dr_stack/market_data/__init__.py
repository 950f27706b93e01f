"""The market data service: quotes with failover Alpaca → Finnhub → Polygon, crypto from CoinGecko, served from a
cache a refresh loop keeps fresh (docs/local-stack-contract.md, "Market data service")."""
