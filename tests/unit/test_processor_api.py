import pytest
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from chaos_dr_stack.processor.api import create_app

GPUS = [
    {"_id": "gpu-0", "gpu_id": "gpu-0", "produced_at": 10.0, "producer_id": "p-0", "seq": 4, "updated_at": 11.0},
    {"_id": "gpu-1", "gpu_id": "gpu-1", "produced_at": 12.0, "producer_id": "p-1", "seq": 9, "updated_at": 13.0},
]


class FakeCollection:
    def __init__(self, docs, fail: bool = False):
        self.docs, self.fail = docs, fail

    def _check(self):
        if self.fail:
            raise ServerSelectionTimeoutError("no servers")

    def find(self, _filter, sort=None):
        self._check()
        return sorted(self.docs, key=lambda d: d["_id"])

    def find_one(self, query):
        self._check()
        return next((d for d in self.docs if d["_id"] == query["_id"]), None)


def client(fail=False, kafka=True, mongo=True) -> TestClient:
    db = {"gpu_latest": FakeCollection(GPUS, fail)}
    return TestClient(create_app(db, kafka_ok=lambda: kafka, mongo_ok=lambda: mongo))


def test_all_gpus_without_mongo_ids():
    response = client().get("/gpu/info")
    assert response.status_code == 200
    assert [g["gpu_id"] for g in response.json()["gpus"]] == ["gpu-0", "gpu-1"]
    assert all("_id" not in g for g in response.json()["gpus"])


def test_one_gpu():
    response = client().get("/gpu/info", params={"gpu_id": "gpu-1"})
    assert response.status_code == 200
    assert response.json() == {k: v for k, v in GPUS[1].items() if k != "_id"}


@pytest.mark.parametrize("bad", ["", "gpu 1", "x" * 65, "gpu/1"])
def test_bad_gpu_id_is_400_naming_the_parameter(bad):
    response = client().get("/gpu/info", params={"gpu_id": bad})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("invalid gpu_id ")


def test_unknown_gpu_is_404():
    response = client().get("/gpu/info", params={"gpu_id": "gpu-9"})
    assert response.status_code == 404
    assert response.json() == {"detail": "gpu_id 'gpu-9' not found"}


def test_mongo_down_is_503_on_gpu_info():
    response = client(fail=True).get("/gpu/info")
    assert response.status_code == 503
    assert "mongo unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    ("kafka", "mongo", "code", "status"),
    # Kafka down, Mongo up: the API still serves CUJ-1, so the replica stays ready and SLO-1 is not charged.
    [(True, True, 200, "ok"), (False, True, 200, "degraded"), (True, False, 503, "down"), (False, False, 503, "down")],
)
def test_health_names_what_is_down_and_only_mongo_makes_it_503(kafka, mongo, code, status):
    response = client(kafka=kafka, mongo=mongo).get("/health")
    assert response.status_code == code
    assert response.json() == {"status": status, "kafka": kafka, "mongo": mongo}


def test_liveness_answers_without_asking_any_dependency():
    def unreachable() -> bool:
        raise AssertionError("liveness asked a dependency")

    app = create_app({"gpu_latest": FakeCollection(GPUS, fail=True)}, kafka_ok=unreachable, mongo_ok=unreachable)
    response = TestClient(app).get("/livez")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})
    assert 'path="/livez"' not in TestClient(app).get("/metrics").text, "the kubelet's probes are not user traffic"
    assert client(kafka=False, mongo=False).get("/health").status_code == 503


def test_health_exports_each_dependency_as_a_gauge():
    c = client(kafka=False, mongo=True)
    c.get("/health")
    text = c.get("/metrics").text
    assert 'app_dependency_up{dependency="kafka"} 0.0' in text
    assert 'app_dependency_up{dependency="mongo"} 1.0' in text


def test_metrics_carry_starlette_series_with_grouped_paths():
    c = client()
    c.get("/gpu/info", params={"gpu_id": "gpu-0"})
    text = c.get("/metrics").text
    assert 'starlette_requests_total{app_name="processor",method="GET",path="/gpu/info",status_code="200"}' in text
    assert "app_end_to_end_seconds_bucket" in text
