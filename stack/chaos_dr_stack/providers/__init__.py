"""The provider simulator: one HTTP service standing in for every external LLM and market-data provider, with a
fault API per provider (docs/local-stack-contract.md, "Provider simulator")."""
