"""Logs while Redis / the broker is down: one line per attempt, no traceback."""

from __future__ import annotations

import logging
import warnings

import psycopg
from celery import Celery, beat
from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CANCEL_TASKS_BY_DEFAULT

from tests.conftest import free_port


def test_beat_logs_a_send_to_an_unreachable_broker_in_one_line(caplog):
    app = Celery("probe", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0}
    scheduler = beat.Scheduler(app, lazy=True)
    entry = beat.ScheduleEntry(name="flush", task="apps.ops.tasks.ops_ping_task", schedule=5, app=app)

    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        scheduler.apply_entry(entry)  # what beat does at each tick; the real record, through LOGGING

    [record] = caplog.records
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage().startswith("Message Error: Couldn't apply scheduled task flush: Error 111")
    assert "\n" not in caplog.text.strip() and "Traceback" not in caplog.text


def test_other_errors_keep_their_traceback(caplog):
    try:
        raise ValueError("a bug")
    except ValueError:
        logging.getLogger("celery.beat").exception("Message Error: %s", "a bug")

    [record] = caplog.records
    assert record.exc_info is not None and "Traceback" in caplog.text


def test_a_task_failed_for_an_unreachable_postgresql_is_one_line(caplog):
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/revenge", connect_timeout=5)
    except psycopg.OperationalError:
        logging.getLogger("celery.app.trace").exception("Task %s raised unexpected: %r", "flush", "error")

    [record] = caplog.records
    assert record.exc_info is None and "Traceback" not in caplog.text


def test_celerys_notice_about_its_next_default_is_left_out(caplog):
    # What logging.captureWarnings (on in a worker) logs for the warning Celery gives at each connection loss.
    message = warnings.formatwarning(CANCEL_TASKS_BY_DEFAULT, CPendingDeprecationWarning, "consumer.py", 427)
    logging.getLogger("py.warnings").warning("%s", message)
    logging.getLogger("py.warnings").warning("%s", "another warning")

    assert [record.getMessage() for record in caplog.records] == ["another warning"]
