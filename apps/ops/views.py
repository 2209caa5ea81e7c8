from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView

from apps.ops.errors import error_body
from apps.ops.health import run_checks
from apps.ops.metrics import scrape_hooks_run
from apps.ops.net import client_ip


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no dependency, so a database outage does not restart it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failed = [result.name for result in results if not result.ok]
    checks = {
        result.name: {"ok": result.ok, "ms": result.duration_ms, **({"error": result.error} if result.error else {})}
        for result in results
    }
    if failed:
        body = error_body("not_ready", f"Not ready: {', '.join(failed)} unavailable.")
        return JsonResponse({**body, "status": "unavailable", "failed": failed, "checks": checks}, status=503)
    return JsonResponse({"status": "ready", "checks": checks})


def _metrics_allowed(request: HttpRequest) -> bool:
    if settings.METRICS_TOKEN:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), settings.METRICS_TOKEN):
            return True
    address = client_ip(request)
    return address is not None and any(address in network for network in settings.METRICS_ALLOWED_CIDRS)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; sums every process's metrics when PROMETHEUS_MULTIPROC_DIR is set."""
    if not _metrics_allowed(request):
        return JsonResponse(error_body("forbidden", "Metrics are not available from this address."), status=403)
    scrape_hooks_run()
    return ExportToDjangoView(request)
