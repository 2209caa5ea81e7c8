from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_dependencies(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_probes_answer_head_as_get_and_refuse_writes(client):
    # Load balancers and uptime checkers often probe with HEAD.
    for path in ("/healthz", "/readyz"):
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"", path
        assert client.post(path).status_code == 405, path


def test_readyz_is_200_when_every_dependency_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "broker", "media"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["error"] == {"code": "not_ready", "message": "Not ready: redis unavailable."}
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_names_the_broker_and_unwritable_media(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    blocker = tmp_path / "file"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker / "media"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker", "media"]


def test_unknown_api_path_is_404_in_the_error_format(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_openapi_schema_and_docs_render(client):
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/auth/token", "/api/v1/me", "/api/v1/auth/tokens"} <= set(paths)

    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()  # assets come from Revenge itself (sidecar)
