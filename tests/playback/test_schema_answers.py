"""The OpenAPI schema says what the API answers (issue 13, finding 7): real answers checked against the
documented ones with schemathesis' validator, one place where each used to disagree. The fuzz run
(tests/test_schema_fuzz.py) keeps them in agreement everywhere else."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from django.test import Client

from tests.playback.conftest import at, put

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi() -> dict:
    return Client().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.fixture
def schema(openapi):
    return schemathesis.openapi.from_dict(openapi)


def conforms(schema, response, path: str) -> None:
    """The answer's status code is listed for its operation, and its body is valid for that code."""
    method = response.wsgi_request.method
    operation = schema[path][method]
    assert str(response.status_code) in operation.definition.raw["responses"], response.content
    answer = schemathesis.Response(
        status_code=response.status_code,
        headers={name: [value] for name, value in response.headers.items()},
        content=response.content,
        request=requests.Request(method, f"http://testserver{response.wsgi_request.get_full_path()}").prepare(),
        elapsed=0.0,
        verify=False,
    )
    operation.validate_response(answer)


def test_artists_and_genres_are_documented_as_pages(world, schema):
    for path in ("/api/v1/artists", "/api/v1/genres"):
        response = world.client.get(path)

        assert response.status_code == 200
        assert set(response.json()) == {"count", "next", "previous", "results"}
        conforms(schema, response, path)


def test_libraries_of_a_listener_without_folders_match_the_schema(world, schema):
    listing = world.client.get("/api/v1/libraries")
    library_id = listing.json()["results"][0]["id"]
    detail = world.client.get(f"/api/v1/libraries/{library_id}")

    assert "root_paths" not in detail.json()
    conforms(schema, listing, "/api/v1/libraries")
    conforms(schema, detail, "/api/v1/libraries/{library_id}")


def test_the_batch_answer_is_documented(world, schema):
    put(world.client, world.book, 900_000, device_id="laptop", client_updated_at=at(100))
    response = world.client.post(
        "/api/v1/progress/batch",
        {
            "updates": [
                {"track": world.song.pk, "position_ms": 1_000, "device_id": "car"},
                {"track": world.book.pk, "position_ms": 1_000, "device_id": "car", "client_updated_at": at(50)},
                {"track": world.secret.pk, "position_ms": 1_000, "device_id": "car"},
                {"track": world.song.pk, "position_ms": -1, "device_id": "car"},
                "not an object",
            ]
        },
        format="json",
    )

    assert [result["status"] for result in response.json()["results"]] == [200, 409, 404, 400, 400]
    conforms(schema, response, "/api/v1/progress/batch")


def test_a_listen_still_in_the_buffer_is_documented(world, schema, settings):
    settings.PROGRESS_WRITE_MODE = "buffered"
    put(world.client, world.song, 150_000)

    response = world.client.get("/api/v1/listens")

    assert [row["id"] for row in response.json()["results"]] == [None]
    conforms(schema, response, "/api/v1/listens")


def test_stale_answers_are_documented(world, schema):
    session_id = world.client.post(
        "/api/v1/sessions", {"track": world.book.pk, "device_id": "phone"}, format="json"
    ).json()["id"]
    put(world.client, world.book, 900_000, device_id="laptop", client_updated_at=at(100))

    heartbeat = world.client.patch(
        f"/api/v1/sessions/{session_id}",
        {"position_ms": 10_000, "state": "playing", "client_updated_at": at(50)},
        format="json",
    )
    progress = put(world.client, world.book, 10_000, client_updated_at=at(50))

    assert heartbeat.status_code == progress.status_code == 409
    assert set(heartbeat.json()) == set(progress.json()) == {"error", "current"}
    conforms(schema, heartbeat, "/api/v1/sessions/{session_id}")
    conforms(schema, progress, "/api/v1/progress/{track_id}")


def test_resets_are_documented_as_200_with_the_progress(world, schema):
    put(world.client, world.song, 150_000)

    for path, url in (
        ("/api/v1/progress/{track_id}", f"/api/v1/progress/{world.song.pk}"),
        ("/api/v1/tracks/{track_id}/played", f"/api/v1/tracks/{world.song.pk}/played"),
    ):
        response = world.client.delete(url)

        assert response.status_code == 200
        assert response.json()["position_ms"] == 0
        conforms(schema, response, path)


def test_the_progress_list_is_documented_both_as_a_page_and_as_a_sync(world, schema):
    put(world.client, world.song, 50_000)

    page = world.client.get("/api/v1/progress")
    sync = world.client.get("/api/v1/progress?since=2000-01-01T00:00:00Z")

    assert "count" in page.json() and "next_since" in sync.json()
    conforms(schema, page, "/api/v1/progress")
    conforms(schema, sync, "/api/v1/progress")


@pytest.mark.parametrize(
    ("method", "url", "path", "status"),
    [
        ("get", "/api/v1/tracks?library=abc", "/api/v1/tracks", 400),
        ("get", "/api/v1/tracks/999999", "/api/v1/tracks/{track_id}", 404),
        ("get", "/api/v1/libraries/999999", "/api/v1/libraries/{library_id}", 404),
        ("post", "/api/v1/libraries/{music}/scan", "/api/v1/libraries/{library_id}/scan", 403),
        ("get", "/api/v1/me", "/api/v1/me", 401),
        ("delete", "/api/v1/bookmarks/999999", "/api/v1/bookmarks/{bookmark_id}", 404),
        ("get", f"/api/v1/queue?device_id={'x' * 65}", "/api/v1/queue", 400),
        ("post", "/api/v1/sessions", "/api/v1/sessions", 404),
    ],
)
def test_error_answers_are_documented_in_the_error_format(world, schema, method, url, path, status):
    client = Client() if status == 401 else world.client
    body = {"track": world.secret.pk, "device_id": "phone"} if method == "post" else None
    response = getattr(client, method)(url.format(music=world.song.library_id), body, format="json")

    assert response.status_code == status
    assert set(response.json()["error"]) >= {"code", "message"}
    conforms(schema, response, path)


def test_every_operation_documents_the_error_answers(openapi):
    error = {"$ref": "#/components/schemas/ErrorOutput"}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403"):
                assert responses[status]["content"]["application/json"]["schema"] == error, (method, path, status)
            if "{" in path or any(parameter["name"] == "page" for parameter in operation.get("parameters", [])):
                assert responses["404"]["content"]["application/json"]["schema"] == error, (method, path)
    # Nothing to miss: no 404 promised (the empty queue of a new device is a 200).
    assert "404" not in openapi["paths"]["/api/v1/queue"]["get"]["responses"]
    assert "404" not in openapi["paths"]["/api/v1/me"]["get"]["responses"]
    assert "404" in openapi["paths"]["/api/v1/sessions"]["post"]["responses"]  # a track named in the body


def test_the_schema_carries_the_constraints(openapi):
    operations = openapi["paths"]
    schemas = openapi["components"]["schemas"]

    def query(path: str, name: str, method: str = "get") -> dict:
        return next(p for p in operations[path][method]["parameters"] if p["name"] == name and p["in"] == "query")

    for path in ("/api/v1/tracks", "/api/v1/albums", "/api/v1/artists", "/api/v1/genres"):
        assert query(path, "library")["schema"] == {"type": "integer", "minimum": 1}
        assert query(path, "page")["schema"]["minimum"] == 1
        assert query(path, "page_size")["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
    codecs = ["mp3", "aac", "alac", "flac", "opus", "vorbis", "pcm"]
    for path in ("/api/v1/tracks/{track_id}/stream", "/api/v1/tracks/{track_id}/master.m3u8"):
        parameter = query(path, "codecs")
        assert (parameter.get("style", "form"), parameter["explode"]) == ("form", False)  # ?codecs=mp3,aac
        assert parameter["schema"]["items"]["enum"] == codecs
    assert schemas["CodecsEnum"]["enum"] == codecs
    assert schemas["SessionStartInput"]["properties"]["codecs"]["items"]["allOf"] == [
        {"$ref": "#/components/schemas/CodecsEnum"}
    ]
    patch_body = operations["/api/v1/sessions/{session_id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert patch_body["schema"] == {"$ref": "#/components/schemas/SessionHeartbeatInput"}
    assert schemas["SessionHeartbeatInput"]["required"] == ["position_ms", "state"]
    assert query("/api/v1/queue", "device_id", "put")["required"] is True


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=last", "page"),
        ("page_size=null", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/tracks", "/api/v1/artists", "/api/v1/listens", "/api/v1/progress"])
def test_bad_page_parameters_are_400_naming_the_parameter(world, query, field, path):
    response = world.client.get(f"{path}?{query}")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == [field]


def test_good_page_parameters_still_page(world):
    page = world.client.get("/api/v1/tracks?page=2&page_size=2").json()

    assert page["count"] == 4
    assert len(page["results"]) == 2 and page["previous"] is not None
    assert world.client.get("/api/v1/tracks?page=3&page_size=2").status_code == 404  # past the last page
