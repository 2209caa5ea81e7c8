"""Beat's schedule of the progress flush: every PROGRESS_FLUSH_INTERVAL seconds, but only while the Redis
buffer holds something to flush.

Beat asks `is_due` at each interval anyway; with an empty buffer the answer costs one SCARD in beat and no
task at all (no message, no worker wake-up, no PostgreSQL connection), which is the idle server's case.
Imported by the settings: nothing Django-dependent at import time.
"""

from __future__ import annotations

from datetime import datetime

from celery.schedules import schedstate, schedule


class WhileBuffered(schedule):
    """celery's interval `schedule`, not due while the buffer's dirty set is empty."""

    def is_due(self, last_run_at: datetime) -> schedstate:
        state = super().is_due(last_run_at)
        if not state.is_due:
            return state
        from apps.playback.progress import buffer  # Django is set up by the time beat asks

        try:
            if buffer.buffer_dirty_count() == 0:
                # Not run, so last_run_at stays: asked again in one interval, due at once if entries came.
                return schedstate(is_due=False, next=self.seconds)
        except buffer.UNAVAILABLE:
            pass  # the task runs and says so (and retries at the next interval)
        return state
