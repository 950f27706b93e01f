"""Limits every fault API of the reference stack enforces, whoever calls it."""

MAX_FAULT_TTL_SECONDS = 3600.0
"""The longest any injected fault may live before the stack ends it by itself: the safety net for a run that dies
before its rollback. The framework's own ceiling is the same hour."""
