"""The shipped nginx site (deploy/nginx), rendered for a test or a benchmark and run as a real nginx.

Rendering changes only what a deployment would: listen addresses, the upstream, file system paths and
the certificate. Every replacement must apply, so a renamed path in deploy/nginx fails loudly here
instead of quietly testing something else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEPLOY_NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return os.access(NGINX, os.X_OK)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class NginxSite:
    folder: Path
    http_port: int
    https_port: int
    upstream: str  # host:port of gunicorn
    renditions_root: Path
    static_root: Path
    hls_secret: str
    extra_http: str = ""  # more http-level config (the benchmark's plain static server)
    worker_processes: int = 1
    artwork_root: Path | None = None  # ARTWORK_ROOT (default: a folder of the site's own)

    @property
    def conf(self) -> Path:
        return self.folder / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.folder / "logs" / "access.log"

    @property
    def error_log(self) -> Path:
        return self.folder / "logs" / "error.log"

    def render(self) -> Path:
        snippets = self.folder / "snippets"
        secrets = self.folder / "secrets"
        for sub in (snippets, secrets, self.folder / "logs", self.folder / "temp", self.folder / "acme"):
            sub.mkdir(parents=True, exist_ok=True)
        cert, key = self_signed_certificate(self.folder / "tls")
        (secrets / "nginx-hls-secret.conf").write_text(
            f'map "" $revenge_hls_secret {{ default "{self.hls_secret}"; }}\n'
        )
        replacements = {
            "/etc/nginx/snippets/": f"{snippets}/",
            "/etc/revenge/nginx-*.conf": f"{secrets}/nginx-*.conf",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
            "/etc/ssl/revenge/fullchain.pem": str(cert),
            "/etc/ssl/revenge/privkey.pem": str(key),
            "/var/log/nginx/": f"{self.folder / 'logs'}/",
            "/var/lib/revenge/renditions/": f"{self.renditions_root}/",
            "/var/lib/revenge/artwork/": f"{self.artwork_root or self.folder / 'artwork'}/",
            "/var/lib/revenge/static/": f"{self.static_root}/",
            "/var/www/letsencrypt": str(self.folder / "acme"),
            "server 127.0.0.1:8000;": f"server {self.upstream};",
        }
        applied = {old: 0 for old in replacements}
        sources = [DEPLOY_NGINX / "revenge.conf", *sorted((DEPLOY_NGINX / "snippets").glob("*.conf"))]
        for source in sources:
            text = source.read_text()
            for old, new in replacements.items():
                applied[old] += text.count(old)
                text = text.replace(old, new)
            # The host's IPv6 listens are not part of the test (loopback IPv4 only).
            text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line) + "\n"
            target = self.folder / "site.conf" if source.name == "revenge.conf" else snippets / source.name
            target.write_text(text)
        unused = [old for old, count in applied.items() if count == 0]
        assert not unused, f"deploy/nginx no longer contains {unused}: update tests/e2e/nginx.py"
        temp = self.folder / "temp"
        # nginx's workers read the renditions and originals from pytest's private temp folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}worker_processes {self.worker_processes};\npid {self.folder / 'nginx.pid'};\n"
            f"error_log {self.error_log} warn;\nevents {{ worker_connections 1024; }}\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
            "    sendfile on;\n    tcp_nopush on;\n    server_tokens off;\n"
            f"    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n"
            f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n"
            f"    scgi_temp_path {temp}/scgi;\n"
            f"    include {self.folder / 'site.conf'};\n{self.extra_http}"
            "}\n"
        )
        return self.conf

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run([NGINX, "-t", "-c", str(self.conf)], capture_output=True, text=True)

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"nginx exited: {process.stderr.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5):
                    return process
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise AssertionError("nginx did not listen within 15 s")


def stop(process: subprocess.Popen | None, *, timeout_s: float = 30) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
