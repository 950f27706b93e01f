"""``chaos discover`` on this extension, through the real Chaos Toolkit CLI: it lists every activity the
experiments call, as the kind they call it, with the arguments they pass, real types, and documentation."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from importlib import import_module
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).with_name("chaos")


def experiment_activities() -> dict[tuple[str, str], tuple[str, set[str]]]:
    """(module, func) → (activity type, the argument names any experiment passes)."""
    used: dict[tuple[str, str], tuple[str, set[str]]] = {}

    def walk(node):
        if isinstance(node, dict):
            provider = node.get("provider")
            if isinstance(provider, dict) and provider.get("type") == "python" and "func" in provider:
                key = (provider["module"], provider["func"])
                kind, names = used.setdefault(key, (node["type"], set()))
                names.update(provider.get("arguments") or {})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((ROOT / "experiments").rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return used


@pytest.fixture(scope="module")
def discovery(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("discover") / "discovery.json"
    done = subprocess.run([str(CHAOS), "discover", "chaos-dr-verify", "--no-install", "--no-system-info",
                           "--discovery-path", str(out)], capture_output=True, text=True, timeout=120,
                          cwd=out.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_every_activity_the_experiments_call_is_listed_as_they_call_it(discovery):
    assert discovery["extension"]["name"] == "chaos-dr-verify"
    listed = {(a["mod"], a["name"]): a for a in discovery["activities"]}
    used = experiment_activities()
    assert len(used) > 40
    for (module, func), (kind, passed) in used.items():
        activity = listed.get((module, func))
        assert activity is not None, f"{module}.{func} is called by an experiment but not discovered"
        assert activity["type"] == kind, (module, func, activity["type"], kind)
        accepted = {a["name"] for a in activity["arguments"]}
        assert passed <= accepted, f"{module}.{func}: experiments pass {sorted(passed - accepted)}, unknown to it"


def test_arguments_and_returns_carry_their_real_types(discovery):
    listed = {(a["mod"], a["name"]): a for a in discovery["activities"]}
    replicas = listed[("probes.kafka", "replicas_back_in_sync")]
    assert {a["name"]: a["type"] for a in replicas["arguments"]} == {
        "timeout": "number", "configuration": "mapping", "secrets": "mapping"}
    assert replicas["return_type"] == "mapping"
    for activity in discovery["activities"]:
        func = getattr(import_module(activity["mod"]), activity["name"])
        hints = typing.get_type_hints(func)
        for argument in activity["arguments"]:
            assert "type" in argument, (activity["name"], argument)
            if argument["type"] == "object":
                held = [t for t in typing.get_args(hints[argument["name"]]) if t is not type(None)]
                assert len(held) > 1, f"{activity['name']}({argument['name']}) is typed object: {hints}"


def test_every_activity_is_documented_for_users(discovery):
    for activity in discovery["activities"]:
        doc = activity["doc"] or ""
        assert len(doc) > 40, (activity["mod"], activity["name"], doc)
        assert not re.search(r"(?i)\bissue\s*#?\d", doc), (activity["mod"], activity["name"])
