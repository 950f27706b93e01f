import pytest

from chaoslib_ext.slo.judge import SliVerdict, at_least, at_most, error_budget_status, presence_queries


def test_no_samples_is_never_a_pass():
    assert at_least(None, 0.995) is SliVerdict.NO_DATA
    assert at_most(None, 0.2) is SliVerdict.NO_DATA
    assert at_least(0.996, 0.995) is SliVerdict.PASS
    assert at_least(0.99, 0.995) is SliVerdict.FAIL
    assert at_most(0.2, 0.2) is SliVerdict.PASS
    assert at_most(0.21, 0.2) is SliVerdict.FAIL


@pytest.mark.parametrize(
    "error_ratio, remaining, band",
    [
        (0.0, 100.0, "normal"),
        (0.002, 60.0, "normal"),
        (0.0025, 50.0, "prioritize-reliability"),
        (0.003, 40.0, "prioritize-reliability"),
        (0.004, 20.0, "feature-freeze"),
        (0.0046, 8.0, "emergency"),
        (0.01, -100.0, "emergency"),
    ],
)
def test_budget_bands_follow_the_seed_policy(error_ratio, remaining, band):
    status = error_budget_status(error_ratio, 0.005)
    assert status.remaining_pct == pytest.approx(remaining)
    assert status.band == band


def test_budget_rejects_nonsense():
    with pytest.raises(ValueError, match="within \\(0, 1\\), got 1.5"):
        error_budget_status(0.1, 1.5)


def test_presence_queries_require_every_matched_label():
    seed_query = 'sum(rate(starlette_requests_total{job="processor",status=~"2.."}[5m]))'
    assert presence_queries(seed_query) == ['count(starlette_requests_total{job="processor", status!=""})']
    ours = ('sum(rate(starlette_requests_total{job="processor",path!="/metrics",status_code!~"2.."}[5m])) or vector(0)'
            ' / sum(rate(starlette_requests_total{job="processor",path!="/metrics"}[5m]))')
    assert presence_queries(ours) == [
        'count(starlette_requests_total{job="processor", path!="", status_code!=""})',
        'count(starlette_requests_total{job="processor", path!=""})',
    ]


def test_presence_queries_cover_bare_names_with_ranges():
    seed_proxy = "sum(rate(app_processed_messages_total[1m])) / sum(rate(app_produced_messages_total[1m]))"
    assert presence_queries(seed_proxy) == ["count(app_processed_messages_total{})", "count(app_produced_messages_total{})"]
    assert presence_queries("market_data_staleness_seconds") == ["count(market_data_staleness_seconds)"]
    assert presence_queries("histogram_quantile(0.95, sum by (le) (rate(x_bucket{job=\"a\"}[5m])))") == [
        'count(x_bucket{job="a"})'
    ]
