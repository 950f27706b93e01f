"""The in-cluster Alertmanager receiver answers the same /alerts the local runner does."""
from __future__ import annotations

from fastapi.testclient import TestClient

from chaos_dr_stack.alert_webhook.cli import create_app

FIRING = {"status": "firing", "receiver": "webhook", "alerts": [
    {"status": "firing", "labels": {"alertname": "ProcessorAvailabilityBurn", "profile": "drill"},
     "startsAt": "2026-11-23T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1"}]}


def test_a_notification_is_recorded_with_the_fields_the_probes_read():
    client = TestClient(create_app())
    assert client.post("/alerts/webhook", json=FIRING).json() == {"ok": True}
    [notification] = client.get("/alerts").json()["notifications"]
    assert notification["status"] == "firing" and notification["received_at"] > 0
    assert notification["alerts"] == [{"status": "firing", "labels": FIRING["alerts"][0]["labels"],
                                       "startsAt": "2026-11-23T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]
    assert 'alert_webhook_notifications_total{status="firing"} 1.0' in client.get("/metrics").text


def test_bad_bodies_are_refused_and_not_recorded():
    client = TestClient(create_app())
    refused = client.post("/alerts/webhook", content=b"not json")
    assert refused.status_code == 400 and "not JSON" in refused.json()["detail"]
    refused = client.post("/alerts/webhook", json={"alerts": "nope"})
    assert refused.status_code == 400 and "`alerts` list" in refused.json()["detail"]
    assert client.get("/alerts").json() == {"notifications": []}


def test_the_oldest_notifications_give_way_to_new_ones():
    client = TestClient(create_app(max_notifications=2))
    for status in ("firing", "resolved", "firing"):
        client.post("/alerts/webhook", json={**FIRING, "status": status})
    assert [n["status"] for n in client.get("/alerts").json()["notifications"]] == ["resolved", "firing"]
