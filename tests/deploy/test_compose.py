"""deploy/docker-compose*.yml: the Compose Specification schema, services, queues, storage, trust."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import subprocess

import jsonschema
import pytest

from tests.deploy.kit import (
    APP_PATHS,
    APP_SERVICES,
    DEPLOY,
    HERE,
    LONG_RUNNING,
    compose,
    directives,
    load_yaml,
    mounts,
    require,
)

# --- docker compose ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.traefik.yml"])
def test_compose_files_match_the_compose_specification(name):
    schema = json.loads((HERE / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)  # the schema's "$schema" (draft 2019-09)
    validator.check_schema(schema)

    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load_yaml(DEPLOY / name))]

    assert errors == []


def test_the_schema_check_rejects_what_compose_would_reject():
    validator = jsonschema.Draft201909Validator(json.loads((HERE / "compose-spec.json").read_text()))
    broken = compose()
    broken["services"]["web"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["nginx"]["depends_on"]["web"]["condition"] = "service_ready"

    assert len(list(validator.iter_errors(broken))) == 2


def test_every_app_service_runs_one_image_with_one_env_file_and_the_same_storage():
    services = compose()["services"]
    web = services["web"]

    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == web["image"] == "${REVENGE_IMAGE:-revenge:latest}", name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert service["env_file"] == ".env", name
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HLS_SIGNING_SECRET", "REVENGE_TRUSTED_PROXIES"):
            assert service["environment"][key] == web["environment"][key], (name, key)
        assert mounts(service) == mounts(web), name
        assert service["read_only"] is True and service["init"] is True, name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    for name in APP_SERVICES[1:]:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert (DEPLOY / "Dockerfile").is_file()


def test_workers_consume_exactly_their_queues(settings):
    services = compose()["services"]

    def queues(name: str) -> list[str]:
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "revenge", "worker"], name
        return command[command.index("--queues") + 1].split(",")

    assert queues("worker-transcode") == ["transcode.bulk"]
    assert queues("worker-interactive") == ["transcode.interactive"]  # never behind bulk work (issue 18)
    assert queues("worker-default") == ["default", "scan", "podcasts", "artwork"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "revenge", "beat"]
    assert services["web"]["command"] == ["gunicorn", "revenge.wsgi", "-c", "/opt/revenge/deploy/gunicorn.conf.py"]
    # Every queue the app routes to is consumed by some worker.
    assert {queue.name for queue in settings.CELERY_TASK_QUEUES} == {
        *queues("worker-transcode"),
        *queues("worker-interactive"),
        *queues("worker-default"),
    }


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = compose()["services"]

    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check.get("disable") is not True and check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert services["web"]["healthcheck"]["test"][-2:] == ["/opt/revenge/deploy/docker/healthcheck.py", "web"]
    assert services["worker-transcode"]["healthcheck"]["test"][-1] == "worker"
    assert services["worker-interactive"]["healthcheck"]["test"][-1] == "worker"
    assert services["beat"]["healthcheck"]["test"][-1] == "beat"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["nginx"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert services["redis"]["command"][:3] == ["redis-server", "--appendonly", "yes"]


def test_nginx_sees_media_renditions_and_static_at_the_apps_paths_read_only():
    services = compose()["services"]
    nginx, web = mounts(services["nginx"]), mounts(services["web"])

    for volume, path in APP_PATHS.items():
        assert nginx[path] == (volume, True), path
        assert web[path][0] == volume, path
    assert web["/media"][1] is True  # the app never writes to the audio files
    assert web["/var/lib/revenge/renditions"][1] is False
    # The shipped site, its snippets, the compose upstream over the snippet, the templates, the certs.
    assert nginx["/etc/nginx/conf.d/default.conf"] == ("./nginx/revenge.conf", True)
    assert nginx["/etc/nginx/snippets"] == ("./nginx/snippets", True)
    assert nginx["/etc/nginx/snippets/revenge-upstream.conf"] == ("./docker/nginx/revenge-upstream.conf", True)
    assert nginx["/etc/nginx/templates"] == ("./docker/nginx/templates", True)
    assert nginx["/etc/ssl/revenge"] == ("./certs", True)
    assert nginx["/var/www/letsencrypt"] == ("./acme-challenge", True)
    assert "root /var/www/letsencrypt;" in directives(DEPLOY / "nginx/revenge.conf")
    # The compose upstream is the shipped one but for the server's address.
    assert directives(DEPLOY / "docker/nginx/revenge-upstream.conf") == [
        line.replace("server 127.0.0.1:8000;", "server web:8000;")
        for line in directives(DEPLOY / "nginx/snippets/revenge-upstream.conf")
    ]
    assert "server web:8000;" in directives(DEPLOY / "docker/nginx/revenge-upstream.conf")
    environment = services["nginx"]["environment"]
    assert environment["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/revenge"
    assert environment["HLS_SIGNING_SECRET"].startswith("${HLS_SIGNING_SECRET")
    assert services["web"]["environment"]["HLS_SIGNING_SECRET"].startswith("${HLS_SIGNING_SECRET")
    # The image's entrypoint writes there only if the folder exists and is writable: a tmpfs.
    assert any(entry.split(":")[0] == "/etc/revenge" for entry in services["nginx"]["tmpfs"])


def test_only_the_proxys_fixed_address_is_trusted():
    document = compose()
    subnet = document["networks"]["revenge"]["ipam"]["config"][0]["subnet"]
    proxy_ip = "${REVENGE_PROXY_IP:-172.30.57.10}"
    traefik = load_yaml(DEPLOY / "docker-compose.traefik.yml")["services"]["traefik"]

    assert subnet == "${REVENGE_SUBNET:-172.30.57.0/24}"
    assert document["services"]["nginx"]["networks"] == {"revenge": {"ipv4_address": proxy_ip}}
    assert traefik["networks"] == {"revenge": {"ipv4_address": proxy_ip}}
    assert document["services"]["web"]["environment"]["REVENGE_TRUSTED_PROXIES"] == f"{proxy_ip}/32"
    default = re.compile(r"\$\{[A-Z_]+:-([^}]+)\}")
    assert ipaddress.ip_address(default.match(proxy_ip)[1]) in ipaddress.ip_network(default.match(subnet)[1])
    for name, service in document["services"].items():
        assert "revenge" in service["networks"], name


def test_the_hls_secret_template_renders_to_a_map_nginx_accepts(tmp_path):
    envsubst = require("envsubst")
    template_path = DEPLOY / "docker/nginx/templates/nginx-hls-secret.conf.template"
    template = template_path.read_text()
    # The image writes <name without .template> into NGINX_ENVSUBST_OUTPUT_DIR, where the site includes it.
    assert "include /etc/revenge/nginx-*.conf;" in directives(DEPLOY / "nginx/revenge.conf")
    assert fnmatch.fnmatch(template_path.name.removesuffix(".template"), "nginx-*.conf")
    secret = "0123456789abcdef" * 4
    # As the image's 20-envsubst-on-templates.sh: only variables defined in the environment.
    rendered = subprocess.run(
        [envsubst, "${HLS_SIGNING_SECRET}"],
        input=template,
        env={"HLS_SIGNING_SECRET": secret},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f'default "{secret}";' in rendered and "$revenge_hls_secret" in rendered

    nginx = require("nginx")
    (tmp_path / "nginx-hls-secret.conf").write_text(rendered)
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid; error_log stderr; events {}\n"
        f"http {{ include {tmp_path}/nginx-*.conf;\n"
        "  server { listen 127.0.0.1:1; location / { return 200 $revenge_hls_secret; } } }\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True
    )
    assert checked.returncode == 0, checked.stderr.decode()
