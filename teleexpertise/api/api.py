"""The REST API: one django-ninja instance under /api/, its OpenAPI document at /api/openapi.json and the
interactive docs at /api/docs. Bearer tokens (personal, or issued to an organisation client) on every call but
the OAuth2 token endpoint; one rate budget per token."""

from django.conf import settings
from django.utils.translation import gettext as _
from ninja import Form, NinjaAPI

from teleexpertise.api import errors, schemas, services
from teleexpertise.api.auth import BearerToken, TokenEndpointThrottle, TokenRateThrottle
from teleexpertise.api.cases import router as cases_router
from teleexpertise.api.errors import ApiError, Error
from teleexpertise.api.reports import router as reports_router
from teleexpertise.api.webhooks import router as webhooks_router
from teleexpertise.audit.services import client_ip
from teleexpertise.webhooks.models import EVENT_TYPES

DESCRIPTION = """Tele-expertise requests, from the requester's draft to the expert's signed report.

**Authentication**: `Authorization: Bearer <token>`.
- a *personal token*, made by a user on the page « Jetons API » (`/api-tokens/`), acts as that user;
- an *organisation client* gets short-lived tokens from `POST /api/oauth/token` (OAuth2 client credentials) and
  names, in `X-On-Behalf-Of`, the RPPS or ADELI number of the professional of its organisation it acts for.

Scopes: `cases:read`, `cases:write`, `reports:write`, and `webhooks:manage` (organisation clients only). Errors
are `{"code", "message", "fields"}`; messages are French unless `Accept-Language: en`. A case that is not the
caller's answers 404.

**Webhooks** (organisation clients, scope `webhooks:manage`, no `X-On-Behalf-Of`): `POST /api/webhooks` subscribes
an https address to case events (EVENT_TYPES) of the cases the organisation's professionals see. Each event is
POSTed as JSON `{"id", "type", "occurred_at", "case": {"id", "reference", "state", "links"}}` — no patient data:
read the case with a token — with the headers `X-Teleexpertise-Event`, `X-Teleexpertise-Delivery` (the same on
every retry: deduplicate on it), `X-Teleexpertise-Timestamp` (Unix seconds) and `X-Teleexpertise-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the webhook's secret>`. Verify the signature over the raw
body with a constant-time comparison and refuse a timestamp more than 5 minutes from your clock. Answer 2xx within
10 s; anything else is retried (by default after 1 min, 5 min, 30 min, 2 h and 12 h), then failed; a webhook whose
deliveries keep failing (10 in a row by default) is disabled (`PATCH` it with `{"active": true}` to turn it back
on). The delivery log: `GET /api/webhooks/{id}/deliveries`.
""".replace("EVENT_TYPES", ", ".join(f"`{event}`" for event in EVENT_TYPES))

api = NinjaAPI(title="Téléexpertise", version="1", description=DESCRIPTION, urls_namespace="api",
               auth=BearerToken(), throttle=[TokenRateThrottle()], docs_url="/docs", openapi_url="/openapi.json")
errors.install(api)
api.add_router("", cases_router)
api.add_router("", reports_router)
api.add_router("", webhooks_router)


@api.post("/oauth/token", auth=None, throttle=[TokenEndpointThrottle()], tags=["authentication"],
          response={200: schemas.TokenOut, 400: Error, 401: Error, 422: Error, 429: Error},
          summary="OAuth2 client credentials grant (organisation clients)")
def oauth_token(request, grant_type: Form[str], client_id: Form[str], client_secret: Form[str],
                scope: Form[str] = ""):
    """Form-encoded as in RFC 6749 §4.4; the answer's `scope` lists what the token may do."""
    if grant_type != "client_credentials":
        raise ApiError(400, "unsupported_grant_type", _("Seul le type « client_credentials » est accepté."))
    try:
        token, secret = services.client_token_issue(client_id=client_id, client_secret=client_secret, scope=scope,
                                                    ip=client_ip(request))
    except services.ClientAuthError as exc:
        raise ApiError(401 if exc.code == "invalid_client" else 400, exc.code, str(exc)) from None
    return {"access_token": secret, "token_type": "Bearer", "expires_in": settings.API_CLIENT_TOKEN_SECONDS,
            "scope": " ".join(token.scopes)}
