"""Secrets never reach a journal, a log or a report.

A secret is known two ways: by its *name* (an environment variable or a configuration/--var key that says
TOKEN, KEY, SECRET or PASSWORD, e.g. ``GAMEDAY_FAULT_TOKEN``; anything under an experiment's ``secrets``), and
then by its *value*, wherever that value turns up (a log line, a probe output, an exception message). Values
shorter than ``MIN_SECRET_LENGTH`` are left alone: redacting every "true" or "1" would hide the evidence and
protect nothing.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "***REDACTED***"
MIN_SECRET_LENGTH = 6
SECRET_ENV_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
SECRET_KEY_NAME = re.compile(
    r"token|secret|password|passwd|credential|api[_-]?key|private[_-]?key|access[_-]?key|_key$", re.IGNORECASE
)
"""Keys in JSON documents. A bare ``key`` is not one: Chaos Toolkit uses it to *name* an environment variable."""
TEXT_FILES = ("journal.json", "chaostoolkit.log", "chaos-output.txt", "timeline.jsonl", "sli.jsonl")


def secret_values(environ: Mapping[str, str] | None = None, variables: Mapping[str, Any] | None = None,
                  extra: Iterable[str] = ()) -> set[str]:
    """Values to mask: of environment variables and variables whose names mark them secret, plus ``extra``."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_ENV_NAME.search(k)}
    values |= {str(v) for k, v in (variables or {}).items() if SECRET_ENV_NAME.search(k) and v is not None}
    values |= set(extra)
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


def redact_text(text: str, values: Iterable[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def redact_data(data: Any, values: Iterable[str], _secret: bool = False) -> Any:
    """A copy of ``data`` with secret keys' values and known secret values masked."""
    values = list(values)
    if isinstance(data, Mapping):
        return {k: redact_data(v, values, _secret or bool(SECRET_KEY_NAME.search(str(k)))) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_data(v, values, _secret) for v in data]
    if _secret and data not in (None, "", True, False):
        return MASK
    if isinstance(data, str):
        return redact_text(data, values)
    return data


def redact_run_dir(run_dir: Path, values: Iterable[str]) -> list[Path]:
    """Mask secrets in place in every file an experiment run leaves; returns the files that changed."""
    values = list(values)
    changed = []
    for name in TEXT_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        original = path.read_text(encoding="utf-8", errors="replace")
        text = redact_text(original, values)
        if name == "journal.json":
            try:
                text = json.dumps(redact_data(json.loads(text), values), indent=2)
            except ValueError:
                pass  # not JSON (a journal cut short): the value masking above still applies
        if text != original:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
