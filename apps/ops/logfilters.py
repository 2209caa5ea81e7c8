"""Logging filters named in settings.LOGGING: an outage of PostgreSQL, Redis or the broker is logged in one
line per attempt, not as a traceback per attempt."""

from __future__ import annotations

import logging

import psycopg
import redis
from kombu.exceptions import OperationalError as BrokerError

_UNREACHABLE = (BrokerError, ConnectionError, TimeoutError, redis.ConnectionError, redis.TimeoutError)


class OneLineWhenUnreachable(logging.Filter):
    """A record about a server that cannot be reached keeps its first line and loses its traceback.

    celery beat logs every scheduled send that fails with the caller's stack and the whole exception chain
    (about 100 lines), every few seconds while Redis is down; a worker logs each task that failed because
    PostgreSQL was gone the same way. An outage is an expected state that /readyz reports, and the first
    line says what failed. Any other error keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _unreachable(record.exc_info[1]):
            record.msg, record.args = record.getMessage().split("\n", 1)[0], None
            record.exc_info = record.exc_text = None
        return True


class DropContaining(logging.Filter):
    """Drops records whose message contains `text`: a notice repeated at every event that says nothing new."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _unreachable(error: BaseException | None) -> bool:
    """Anywhere in the chain: a connection error, or a psycopg error without an SQLSTATE (the client could
    not reach the server; an error the server itself raised, a deadlock say, has one and keeps its trace)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _UNREACHABLE) or (isinstance(error, psycopg.OperationalError) and not error.sqlstate):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
