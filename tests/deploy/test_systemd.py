"""deploy/systemd: hardening, systemd-analyze, the kernel's MDWE under which Python and ffmpeg run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_DIR
from tests.deploy.kit import DEPLOY, require

# --- systemd ----------------------------------------------------------------------------------------

UNITS = ("revenge-web.service", "revenge-worker@.service", "revenge-beat.service", "revenge-worker-metrics.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
}


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}} (keys may repeat, unlike INI)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("name", UNITS)
def test_units_run_the_app_as_revenge_hardened(name):
    service = unit(name)["Service"]

    assert service["User"] == ["revenge"] and service["Group"] == ["revenge"]
    assert service["WorkingDirectory"] == ["/opt/revenge"]
    assert service["Restart"] == ["on-failure"]
    for key, value in HARDENING.items():
        assert service[key] == [value], key
    assert service["SystemCallFilter"][0] == "@system-service"
    assert service["RuntimeDirectory"] == ["revenge/prometheus"] and service["RuntimeDirectoryPreserve"] == ["yes"]
    environment = dict(value.split("=", 1) for value in service.get("Environment", []))
    assert environment["PROMETHEUS_MULTIPROC_DIR"] == "/run/revenge/prometheus"
    executable, *arguments = service["ExecStart"][0].split()
    assert executable.startswith("/opt/revenge/.venv/bin/")
    assert (Path(sys.executable).parent / Path(executable).name).exists(), executable  # same name in our venv
    for argument in arguments:
        if argument.startswith("/opt/revenge/") and ".venv" not in argument:
            assert (BASE_DIR / argument.removeprefix("/opt/revenge/")).is_file(), argument
    if name != "revenge-worker-metrics.service":
        assert service["EnvironmentFile"] == ["/etc/revenge/revenge.env"]
        assert service["StateDirectory"] == ["revenge"] and service["ReadWritePaths"] == ["/var/lib/revenge"]
        # Renditions and the data folder are writable: inside the state directory.
        assert environment["REVENGE_DATA_DIR"] == "/var/lib/revenge"
        assert environment["RENDITIONS_ROOT"].startswith("/var/lib/revenge/")
        assert service["KillMode"] == ["mixed"]


def test_worker_template_takes_its_queues_from_the_instance_name():
    service = unit("revenge-worker@.service")["Service"]
    command = service["ExecStart"][0].split()

    assert command[1:4] == ["-A", "revenge", "worker"]
    assert "--queues=%I" in command and "--hostname=%I@%%h" in command
    assert service["TimeoutStopSec"] == ["5min"]  # Celery's warm shutdown: running transcodes finish
    web = unit("revenge-web.service")["Service"]
    assert web["Type"] == ["notify"] and web["ExecReload"] == ["/bin/kill -s HUP $MAINPID"]
    assert web["ExecStart"][0].endswith("gunicorn revenge.wsgi -c /opt/revenge/deploy/gunicorn.conf.py")


def test_systemd_analyze_verifies_the_units_and_rates_them_ok(tmp_path):
    analyze = require("systemd-analyze")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for program in ("gunicorn", "celery", "python"):
        (stubs / program).write_text("#!/bin/sh\n")
        (stubs / program).chmod(0o755)
    # The virtualenv's programs do not exist here at /opt/revenge: the same units with stand-ins.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/revenge/.venv/bin/", f"{stubs}/")
        (tmp_path / name).write_text(text)
    shutil.copy(tmp_path / "revenge-worker@.service", tmp_path / "revenge-worker@default\\x2cscan.service")
    names = [n for n in UNITS if "@." not in n] + ["revenge-worker@default\\x2cscan.service"]

    verified = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr  # unknown keys and bad values are only warnings
    for name in names:
        rated = subprocess.run(
            [analyze, "security", "--offline=yes", name], cwd=tmp_path, capture_output=True, text=True
        )
        exposure = re.search(r"Overall exposure level for .*: (\d+\.\d+)", rated.stdout)
        assert exposure and float(exposure.group(1)) <= 2.0, rated.stdout[-500:]


def test_python_and_ffmpeg_run_under_memory_deny_write_execute(tmp_path, settings):
    """MemoryDenyWriteExecute=yes in the units: the kernel's same rule (PR_SET_MDWE) on the app's code and
    on the ffmpeg it runs, as a transcode does (AAC in fMP4 HLS)."""
    under_mdwe = (
        "import ctypes, os, sys; "
        "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0; "  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    if subprocess.run([sys.executable, "-c", under_mdwe, "/bin/true"]).returncode != 0:
        pytest.skip("PR_SET_MDWE is not available (Linux 6.3 or newer)")
    app = (
        "import mmap, sys\n"
        "import django\n"
        "django.setup()\n"
        "import apps.streaming.tasks, apps.streaming.transcoder, psycopg, redis, revenge.celery, revenge.wsgi\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    sys.exit(0)\n"
        "sys.exit('a writable and executable mapping was allowed: the rule is not in force')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revenge.settings", "STATIC_ROOT": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    python = subprocess.run(
        [sys.executable, "-c", under_mdwe, sys.executable, "-c", app],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    ffmpeg = subprocess.run(
        [sys.executable, "-c", under_mdwe, settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", "-b:a", "128k", "-f", "hls",
         "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", str(tmp_path / "index.m3u8")],
        capture_output=True, text=True,
    )  # fmt: skip

    # The app's modules load under the rule, and the rule is in force (a W+X mapping is refused).
    assert python.returncode == 0, python.stderr
    assert ffmpeg.returncode == 0, ffmpeg.stderr
    assert (tmp_path / "init.mp4").is_file() and "#EXT-X-ENDLIST" in (tmp_path / "index.m3u8").read_text()
