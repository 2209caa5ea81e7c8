"""deploy/prometheus and deploy/grafana: promtool, alert unit tests, metric names against the app."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.kit import DEPLOY, HERE, load_yaml, require

# --- Prometheus, alerts, Grafana ---------------------------------------------------------------------

PROMQL_WORDS = {
    # functions and keywords of the PromQL used here; any other word must be a metric of the app
    *"sum max min avg count topk rate irate increase delta deriv histogram_quantile clamp_min abs offset".split(),
    *"and or unless by without on ignoring group_left group_right bool".split(),
}
NOT_FROM_THE_APP = {"up", "probe_success"}  # written by Prometheus itself and by the blackbox exporter


def promql_metrics(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return words - PROMQL_WORDS - {word for word in words if re.fullmatch(r"\d+[smhd]", word)}


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(DEPLOY / "prometheus/alerts.yml")["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/revenge-dashboard.json").read_text())


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def exposed_metric_names(text: str) -> set[str]:
    """Every sample name the exposition can carry, including labelled families not yet observed."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        if family.type == "summary":
            names.update({family.name + "_count", family.name + "_sum"})
    return names


@pytest.mark.django_db
def test_every_metric_in_the_alerts_and_the_dashboard_is_in_the_apps_metrics(client):
    client.get("/healthz")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    exposed = exposed_metric_names(response.content.decode())
    used = {
        name for expr in [rule["expr"] for rule in alert_rules()] + dashboard_exprs() for name in promql_metrics(expr)
    }

    # The scan works: it finds the metrics, and only them, in every form of query used here.
    assert {"revenge_transcode_jobs_total", "django_http_responses_total_by_status_total"} <= used
    assert promql_metrics(
        'histogram_quantile(0.9, sum by (le) (rate(revenge_typo_bucket{status=~"5.."}[5m]))) > 2 '
        "and max(up offset 1h) - max(deriv(revenge_other[1h])) >= 0"
    ) == {"revenge_typo_bucket", "up", "revenge_other"}
    assert used - NOT_FROM_THE_APP - exposed == set()
    # The dashboard shows every revenge_ metric family the app exports.
    family = re.compile(r"_(total|bucket|count|sum)$")
    exported = {
        family.sub("", name) for name in exposed if name.startswith("revenge_") and not name.endswith("_created")
    }
    shown = {family.sub("", name) for expr in dashboard_exprs() for name in promql_metrics(expr)}
    assert exported - shown == set()


def test_alert_rules_cover_what_the_operations_need():
    rules = {rule["alert"]: rule for rule in alert_rules()}

    for name in (
        "RevengeTranscodeFailures",
        "RevengeInteractiveTranscodeBacklog",
        "RevengeHigh5xxRate",
        "RevengeNotReady",
        "RevengeWebDown",
    ):
        assert name in rules, name
    assert 'revenge_transcode_jobs_total{status="failed"}' in rules["RevengeTranscodeFailures"]["expr"]
    assert "revenge_transcode_queue_depth" in rules["RevengeInteractiveTranscodeBacklog"]["expr"]
    assert 'status=~"5.."' in rules["RevengeHigh5xxRate"]["expr"]
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"revenge-web", "revenge-workers", "revenge-readyz"}
    assert jobs["revenge-web"]["metrics_path"] == "/metrics"
    assert jobs["revenge-workers"]["dns_sd_configs"][0]["port"] == 9810
    assert 'job="revenge-readyz"' in rules["RevengeNotReady"]["expr"]


def test_promtool_checks_the_config_and_the_rules_and_runs_the_alert_unit_tests(tmp_path):
    promtool = require("promtool")
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(DEPLOY / "prometheus" / name, tmp_path / name)
    (tmp_path / "revenge-metrics-token").write_text("token\n")
    # The dashboard's queries are parsed by promtool too, as recording rules.
    records = [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(dashboard_exprs())]
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": records}]}))

    for command in (
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        [promtool, "check", "rules", str(tmp_path / "dashboard-queries.yml")],
        [promtool, "test", "rules", str(HERE / "alerts_test.yml")],
    ):
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
        assert done.returncode == 0, f"{command[1:3]}: {done.stdout}{done.stderr}"


def test_grafana_dashboard_is_importable():
    board = dashboard()
    panels = board["panels"]

    assert board["schemaVersion"] == 39 and board["uid"] and board["title"] == "Revenge"
    assert board["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes Revenge",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(target["datasource"] == panel["datasource"] for target in panel["targets"])
    titles = {panel["title"] for panel in panels}
    for title in (
        "Transcode jobs by status",
        "Transcode duration",
        "Transcode queue depth",
        "Renditions by status",
        "Stream starts by mode",
        "Progress updates by result",
        "Progress buffer flush",
        "Responses by status",
        "Latency (including middlewares)",
        "5xx rate",
    ):
        assert title in titles, title
