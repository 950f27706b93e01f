"""A plain install is the framework alone: with the extras' modules unimportable (as after ``pip install
chaos-dr-verify``), discovery, the CLI, the local target and the report still work, and each piece that needs an
extra says which one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXTRAS_MODULES = ("matplotlib", "kubernetes", "chaosk8s", "chaos_dr_stack", "confluent_kafka", "fastapi", "uvicorn",
                  "starlette_exporter", "prometheus_client", "secantus", "openai")

BLOCK = f'''
import importlib.abc, sys
class NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NoExtras())
import importlib.util
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in {EXTRAS_MODULES!r} else _find_spec(name, *a)
'''

CHECKS = BLOCK + '''
import json, tempfile
from pathlib import Path
from chaoslib_ext.discovery import discover
from chaoslib_ext.cli import build_parser, main
from chaoslib_ext.errors import TargetMisconfigured
from chaoslib_ext.targets import from_configuration
from chaoslib_ext.gameday.report.html import _plot
out = {"activities": len(discover()["activities"]), "parser": build_parser().prog}
with from_configuration({"local_control_url": "http://127.0.0.1:9"}) as target:
    out["local"] = target.kind
try:
    from_configuration({"target": "kubernetes"})
except TargetMisconfigured as exc:
    out["kubernetes"] = str(exc)
out["plot"] = _plot("measurements_against_budgets", [])
out["stack_up"] = main(["stack", "up", "--state-dir", tempfile.mkdtemp()])
out["stack_down"] = main(["stack", "down", "--state-dir", tempfile.mkdtemp()])
print(json.dumps(out))
'''


def test_the_framework_works_without_its_extras_and_names_the_one_a_piece_needs():
    done = subprocess.run([sys.executable, "-c", CHECKS], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["activities"] > 60 and result["parser"] == "gameday" and result["local"] == "local"
    assert result["kubernetes"] == ("the kubernetes target needs the kubernetes extra, which is not installed "
                                    "(no kubernetes, chaosk8s): pip install 'chaos-dr-verify[kubernetes]'")
    assert result["plot"] == "plots need the report extra: pip install 'chaos-dr-verify[report]'"
    assert result["stack_up"] == 8 and result["stack_down"] == 8
    assert done.stderr.count("the local stack needs the local extra, which is not installed (no chaos_dr_stack, "
                             "confluent_kafka, fastapi, uvicorn, starlette_exporter, prometheus_client, secantus, "
                             "openai): from a checkout, pip install -e ./stack -e '.[local]'") == 2, done.stderr
