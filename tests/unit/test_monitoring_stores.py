"""Each local stack's Prometheus and Alertmanager stores are its own: where they are, and what a new stack deletes."""
from __future__ import annotations

from chaos_dr_stack.local import monitoring
from chaos_dr_stack.local.components import Binaries, build_specs
from chaos_dr_stack.local.layout import StackLayout
from chaos_dr_stack.local.runner import parse_args


def test_the_specs_point_both_stores_at_the_paths_the_runner_clears(tmp_path):
    layout = StackLayout(23000, tmp_path)
    specs = {s.name: s for s in build_specs(layout, Binaries("secantusd", "prometheus", "alertmanager"), 20,
                                                         kafka_argvs=[["java"]])}
    assert f"--storage.tsdb.path={tmp_path / 'prometheus'}" in specs["prometheus"].argv
    assert f"--storage.path={tmp_path / 'alertmanager'}" in specs["alertmanager"].argv
    assert (layout.files.prometheus_data, layout.files.alertmanager_data) == (tmp_path / "prometheus",
                                                                              tmp_path / "alertmanager")


def test_a_new_stack_deletes_only_the_earlier_metrics_and_alert_stores(tmp_path):
    layout = StackLayout(23000, tmp_path)
    for kept in ("mongo", "backups", "logs"):
        (tmp_path / kept).mkdir()
        (tmp_path / kept / "data").write_text("kept")
    (tmp_path / "prometheus" / "wal").mkdir(parents=True)
    (tmp_path / "alertmanager").mkdir()
    (tmp_path / "alertmanager" / "silences").write_text("old")
    assert monitoring.fresh_stores(layout) == [tmp_path / "prometheus", tmp_path / "alertmanager"]
    assert not (tmp_path / "prometheus").exists() and not (tmp_path / "alertmanager").exists()
    assert all((tmp_path / kept / "data").read_text() == "kept" for kept in ("mongo", "backups", "logs"))
    assert monitoring.fresh_stores(layout) == []  # nothing left by an earlier stack: nothing to do


def test_the_runner_keeps_them_only_when_told():
    base = ["--base-port", "23000", "--state-dir", "/tmp/x"]
    assert parse_args(base).keep_metrics is False
    assert parse_args([*base, "--keep-metrics"]).keep_metrics is True
