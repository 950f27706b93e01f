"""The report's measurements plot: every measurement as a share of its own budget, so a 900 s budget does not
squeeze a 10 s one against zero, and the figure is drawn."""
from __future__ import annotations

import base64

from chaoslib_ext.gameday.report.model import Measurement
from chaoslib_ext.gameday.report.plots import SHARE_SHOWN_UP_TO, budget_rows, measurements_against_budgets


def test_each_measurement_is_a_share_of_its_own_budget():
    rto = Measurement("RTO", "mongo-destroy-restore", samples=[12.0], max=12.0, budget=900.0)
    failover = Measurement("provider failover", "llm", samples=[2.0, 4.0], p50=3.0, p95=4.0, max=4.0, budget=10.0)
    rows = budget_rows([rto, failover])
    assert [r.label for r in rows] == ["RTO (budget 900)", "provider failover (budget 10)"]
    assert abs(rows[0].samples[0] - 12 / 900 * 100) < 1e-9
    assert rows[1].samples == [20.0, 40.0] and rows[1].markers == {"p50": 30.0, "p95": 40.0, "max": 40.0}
    assert [r.over_budget for r in rows] == [False, False] and all(not r.beyond for r in rows)
    assert [r.note for r in rows] == ["max 12", "p95 4"]


def test_far_over_budget_sits_at_the_edge_with_its_true_share_and_no_budget_scales_to_its_maximum():
    over = Measurement("lag", "partition", samples=[100.0], max=100.0, budget=20.0)
    unbudgeted = Measurement("duplicates", "pod-kill", samples=[2.0, 8.0], max=8.0)
    rows = budget_rows([over, unbudgeted, Measurement("empty", "x")])
    assert len(rows) == 2
    assert rows[0].samples == [SHARE_SHOWN_UP_TO] and rows[0].beyond == [500.0] and rows[0].over_budget is True
    assert rows[1].label == "duplicates (no budget; 100 % = 8)" and rows[1].samples == [25.0, 100.0]
    assert rows[1].over_budget is None


def test_the_figure_is_a_png():
    png = measurements_against_budgets([Measurement("RTO", "dr", samples=[5.7], max=5.7, budget=900.0)])
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert measurements_against_budgets([]) is None
