"""Schemathesis against the live OpenAPI schema of a real server: every operation, signed in with a token,
over a small scanned library with ready renditions (so that the 200 paths run, not only the 404s).

Fails on any 5xx, any response that does not match the schema, any status code the schema does not list,
a wrong content type or a missing documented header. Writes the counts (operations, requests, failures)
into pytest's report, also when it passes, for the closing note of a change.

Bounded: SCHEMA_FUZZ_MAX_EXAMPLES per operation and phase (default 8). One worker and a fixed seed, so
that CI is repeatable; SCHEMA_FUZZ_SEED=random (or a number) explores further on a developer's machine.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from apps.library.models import LibraryKind, Track
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.pipeline import ready, scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct horse battery staple"  # UserFactory's

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_MAX_EXAMPLES", "8"))
_seed = os.environ.get("SCHEMA_FUZZ_SEED", "13")
SEED = random.randrange(2**32) if _seed == "random" else int(_seed)


def _library(tmp_path: Path, user) -> None:
    """Two albums of music (tags, genres) with one track transcoded, and a two-file audiobook."""
    music = tmp_path / "music"
    for number, (album, genre) in enumerate([("First", "Rock"), ("First", "Rock"), ("Second", "Jazz")], start=1):
        make_audio(
            music / album / f"{number:02d}.mp3",
            seconds=3,
            tags={"title": f"Song {number}", "artist": f"Artist {album}", "album": album, "genre": genre,
                  "track": str(number), "date": "2001"},
        )  # fmt: skip
    books = tmp_path / "books"
    for part in (1, 2):
        make_audio(books / "Author" / "Book" / f"{part:02d}.mp3", seconds=3)
    for root, kind in ((music, LibraryKind.MUSIC), (books, LibraryKind.AUDIOBOOK)):
        library = LibraryFactory(root=root, kind=kind)
        scan(library)
        LibraryAccessFactory(user=user, library=library)
    ready(Track.objects.filter(library__kind=LibraryKind.MUSIC).order_by("pk").first())


@pytest.mark.timeout(600)
def test_the_api_answers_as_its_schema_says(live_server, tmp_path: Path, settings, request, capsys):
    # The fuzzer signs in with made-up names (and this test signs in again after each revoked token).
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token_login": "100000/min"}}
    user = UserFactory()
    _library(tmp_path, user)

    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # One worker: the run is the same each time (two interleave writes differently), and
            # Hypothesis' lazy imports race between threads.
            "workers": 1,
            "cache": {"enabled": False},  # no .schemathesis/ folder in the checkout
            # The live server's thread for a kept-alive connection holds a database connection until the
            # client hangs up, and schemathesis never closes its sessions: the test database could not be
            # dropped at the end of the run.
            "headers": {"Connection": "close"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"enabled": False}},
            "continue-on-failure": True,
        }
    )
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema?format=json", config=config)
    schema.config.update(base_url=live_server.url)

    @schema.auth(refresh_interval=600, retry_on=[401])
    class TokenAuth:
        """The listener's token, signed in for through the API (no ORM from the fuzzer's thread) and again
        after a 401: a fuzzed DELETE /auth/token(s) may revoke it. The request is then replayed."""

        def get(self, case, context) -> str:
            credentials = {"username": user.username, "password": PASSWORD, "name": "schema fuzz"}
            response = requests.post(f"{live_server.url}/api/v1/auth/token", json=credentials, timeout=30)
            response.raise_for_status()
            return response.json()["token"]

        def set(self, case, data: str, context) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    operations: set[str] = set()
    sent = 0
    failures: Counter[str] = Counter()
    errors: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            if event.status is not Status.SKIP and event.recorder.label:
                operations.add(event.recorder.label)
            sent += sum(1 for i in event.recorder.interactions.values() if i.response is not None)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures[f"{event.recorder.label}: {check.name}: {failure.title} {failure.message}"] += 1
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "info", None) or getattr(event, "exception", event)))
    total = sum(failures.values())
    summary = (
        f"schemathesis (seed {SEED}, {MAX_EXAMPLES} examples per phase): "
        f"{len(operations)} operations, {sent} requests, {total} failures"
    )
    details = [f"  {count} x {line[:600]}" for line, count in sorted(failures.items())]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    with capsys.disabled():  # in `make test`'s output whether the test passes or not
        reporter.write_line("")
        reporter.write_line(summary)
    assert errors == []
    assert len(operations) == len(list(schema.get_all_operations()))
    assert total == 0, "\n".join([summary, *details])
