import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from teleexpertise.core.jobs import queue_status

logger = logging.getLogger(__name__)


def _database_status() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok", "vendor": connection.vendor}


@never_cache
@require_GET
def healthz(request):
    checks = {}
    for name, probe in (("database", _database_status), ("jobs", queue_status)):
        try:
            checks[name] = probe()
        except Exception as exc:  # a health check reports every failure instead of raising
            logger.warning("health check failed", extra={"check": name, "error": str(exc)})
            checks[name] = {"status": "error", "error": exc.__class__.__name__}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)
