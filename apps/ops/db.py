"""PostgreSQL helpers more than one app needs, written once: a session-level advisory lock that does not
wait, and a cursor that binds its parameters server-side for bulk statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection
from psycopg.rows import TupleRow


@contextmanager
def advisory_lock_try(key: int) -> Iterator[bool]:
    """Take the advisory lock `key` (a signed 64-bit integer) if no other session holds it, without waiting;
    yields whether it was taken, and releases it on leaving.

    Session-level rather than transaction-level so that it spans the several commits of the work it guards
    (a flush, a transcode); a process that dies releases it with its connection, unlike a key in Redis that
    would block the work until it expired. PostgreSQL counts a session's locks, so a second take on the same
    connection succeeds too: the guard is between processes (or threads with their own connections)."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def bulk_cursor() -> psycopg.Cursor[TupleRow]:
    """A cursor that sends parameters apart from the SQL (server-side binding), for `%(name)b` binary
    parameters such as the arrays of an `unnest(...)` bulk statement.

    Django's psycopg cursor inlines parameters into the SQL text, quoting every element of arrays of
    thousands of rows in Python; binding them lets psycopg's C dumpers do it (a scan's DB time halves). It shares
    Django's connection, so it runs inside the caller's transaction; use it as a context manager."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)
