"""Every API error is JSON: {"code": stable, "message": translated, "fields": {field: [messages]}}.

Codes are part of the contract (integrators branch on them); messages are French or English (Accept-Language).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from teleexpertise.api.services import CallerError
from teleexpertise.cases.workflow import WorkflowError


class Error(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] = {}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


# Which body field a service's ValidationError code points at, when the service raises a bare message.
SERVICE_CODE_FIELDS = {"due_at": "due_at", "informed": "patient_informed", "usefulness": "usefulness",
                       "expert": "expert_id", "kind": "kind", "file_size": "file", "case_quota": "file",
                       "identity_mismatch": "patient.ins_nir"}


def invalid(fields: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "invalid", _("Certaines valeurs sont invalides : voyez le détail par champ."), fields)


def refuse_unknown_query(request, filters: type) -> None:
    """A misspelt filter silently ignored would widen the answer: name it instead (422)."""
    unknown = sorted(set(request.GET) - set(filters.model_fields))
    if unknown:
        raise invalid({name: [_("Paramètre inconnu pour cet appel.")] for name in unknown})


def from_django_validation(exc: DjangoValidationError, *, field: str = "", rename: dict | None = None) -> ApiError:
    """A service's ValidationError: per field when it says which, else on `field` (the input it checked)."""
    rename = rename or {}
    if hasattr(exc, "error_dict"):
        return invalid({rename.get(name, name): [str(m) for e in errors for m in e.messages]
                        for name, errors in exc.error_dict.items()})
    code = getattr(exc, "code", None) or ""
    name = SERVICE_CODE_FIELDS.get(code) or field or "__all__"
    return ApiError(422, code if code in SERVICE_CODE_FIELDS else "invalid", " ".join(exc.messages),
                    {name: list(exc.messages)})


def form_errors(form, rename: dict | None = None) -> ApiError:
    """The errors of a Django form used to validate API input, keyed by the API's field names."""
    rename = rename or {}
    return invalid({rename.get(name, name): [str(m) for m in messages] for name, messages in form.errors.items()})


def _pydantic_message(error: dict) -> str:
    if error.get("type") == "missing":
        return _("Ce champ est obligatoire.")
    return _("Valeur invalide (%(detail)s).") % {"detail": error.get("msg", "")}


def _pydantic_fields(errors: list[dict]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        # loc is ("body", "payload", "patient", "ins_nir") or ("query", "limit"): keep what names the field
        loc = [str(p) for p in error.get("loc", ())]
        parts = loc[2:] if len(loc) > 2 and loc[0] in ("body", "form") else loc[1:]
        fields.setdefault(".".join(parts) or "__all__", []).append(_pydantic_message(error))
    return fields


def install(api) -> None:
    """Replace django-ninja's default handlers so that every error has the same shape."""

    def respond(request, status, code, message, fields=None, headers=None):
        response = api.create_response(request, {"code": code, "message": message, "fields": fields or {}},
                                       status=status)
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    @api.exception_handler(ApiError)
    def api_error(request, exc):
        return respond(request, exc.status, exc.code, exc.message, exc.fields)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, "not_found", _("Ressource introuvable."))

    @api.exception_handler(WorkflowError)
    def refused(request, exc):
        return respond(request, 409, "action_refused", str(exc))

    @api.exception_handler(DjangoValidationError)
    def django_invalid(request, exc):
        error = from_django_validation(exc)
        return respond(request, error.status, error.code, error.message, error.fields)

    @api.exception_handler(NinjaValidationError)
    def invalid_input(request, exc):
        return respond(request, 422, "invalid", _("Certaines valeurs sont invalides : voyez le détail par champ."),
                       _pydantic_fields(exc.errors))

    @api.exception_handler(CallerError)
    def no_caller(request, exc):
        return respond(request, 403, "on_behalf_of_required", str(exc))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return respond(request, 401, "unauthorized",
                       _("Jeton d'accès absent, invalide, expiré ou révoqué."), headers={"WWW-Authenticate": "Bearer"})

    @api.exception_handler(Throttled)
    def throttled(request, exc):
        wait = int(exc.wait or 1)
        return respond(request, 429, "rate_limited",
                       _("Trop de requêtes : réessayez dans %(seconds)s s.") % {"seconds": wait},
                       headers={"Retry-After": str(wait)})

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        if exc.status_code == 400:  # django-ninja's only own 400: a body that is not valid JSON or form data
            return respond(request, 400, "malformed_body",
                           _("Le corps de la requête n'est pas lisible (JSON attendu)."))
        return respond(request, exc.status_code, "http_error", str(exc))
