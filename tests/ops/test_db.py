"""The shared PostgreSQL helpers: the advisory lock guards between sessions and is released on every way out;
the bulk cursor binds `%(name)b` parameters server-side inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import transaction

from apps.library.models import Library
from apps.ops.db import advisory_lock_try, bulk_cursor
from tests.conftest import child_database_url

pytestmark = pytest.mark.django_db

KEY = 0x5256_7E57_0001


@pytest.fixture
def other_session() -> Iterator[psycopg.Connection]:
    """A second session on the test database, as another worker process would have."""
    with psycopg.connect(child_database_url(), autocommit=True) as conn:
        yield conn


def _try_lock(conn: psycopg.Connection, key: int) -> bool:
    taken = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
    if taken:
        conn.execute("SELECT pg_advisory_unlock(%s)", [key])
    return taken


def test_advisory_lock_keeps_other_sessions_out_until_left(other_session):
    with advisory_lock_try(KEY) as acquired:
        assert acquired is True
        assert _try_lock(other_session, KEY) is False
        assert _try_lock(other_session, KEY + 1) is True
    assert _try_lock(other_session, KEY) is True


def test_advisory_lock_is_released_when_the_guarded_work_raises(other_session):
    with pytest.raises(RuntimeError), advisory_lock_try(KEY):
        raise RuntimeError("the guarded work failed")
    assert _try_lock(other_session, KEY) is True


def test_advisory_lock_held_elsewhere_is_not_taken_nor_released(other_session):
    other_session.execute("SELECT pg_advisory_lock(%s)", [KEY])
    with advisory_lock_try(KEY) as acquired:
        assert acquired is False
    held = other_session.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
    ).fetchone()[0]
    assert held == 1
    other_session.execute("SELECT pg_advisory_unlock(%s)", [KEY])


def test_bulk_cursor_binds_binary_array_parameters():
    with bulk_cursor() as cursor:
        cursor.execute(
            "SELECT n, label FROM unnest(%(n)b::bigint[], %(label)b::text[]) AS t(n, label) ORDER BY n",
            {"n": [3, 1, 2**62], "label": ["three", "one", "big"]},
        )
        assert cursor.fetchall() == [(1, "one"), (3, "three"), (2**62, "big")]


def test_bulk_cursor_runs_inside_the_callers_transaction(tmp_path):
    with pytest.raises(RuntimeError), transaction.atomic():
        library = Library.objects.create(name="Inside", root_paths=[str(tmp_path)])
        with bulk_cursor() as cursor:
            cursor.execute(
                "UPDATE library_library SET name = %(name)s WHERE id = %(id)s", {"name": "Bound", "id": library.pk}
            )
            cursor.execute("SELECT name FROM library_library WHERE id = %s", [library.pk])
            assert cursor.fetchall() == [("Bound",)]
        raise RuntimeError("roll back")
    assert not Library.objects.filter(name__in=["Inside", "Bound"]).exists()
