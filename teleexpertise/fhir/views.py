"""The FHIR facade's HTTP side: bearer token and scope, search parameters, Bundle and OperationOutcome answers.

Plain Django views rather than django-ninja: FHIR fixes its own media type, error resource and parameter
conventions, and the OpenAPI document of /api/ has nothing to say about them.
"""

import functools
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from teleexpertise.api.auth import TokenRateThrottle
from teleexpertise.api.errors import ApiError
from teleexpertise.api.services import CallerError, token_authenticate
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.core.digits import ascii_digits
from teleexpertise.core.paging import page_total
from teleexpertise.fhir import compiled_search
from teleexpertise.fhir.handlers import (
    RESULT_PARAMS,
    FhirError,
    ResourceType,
    included,
    require_scope,
    search_params,
)
from teleexpertise.fhir.sent import Text, checked, dumps
from teleexpertise.fhir.table import RESOURCES, SYSTEM_INTERACTIONS

MEDIA_TYPE = "application/fhir+json"
FHIR_VERSION = "4.3.0"  # the R4B models every resource is validated with
READ_SCOPE = "cases:read"
DEFAULT_COUNT, MAX_COUNT = 20, 100
_FORMATS = {"json", "application/json", MEDIA_TYPE}
_PAGING = {param.name for param in RESULT_PARAMS}
_BEARER = re.compile(r"Bearer\s+(\S+)\Z", re.IGNORECASE)
# FHIR issue types for the REST API's error codes that the facade lets through.
_API_ISSUE = {404: "not-found", 409: "transient", 500: "exception"}


def respond(resource: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """`resource` as built by `sent.checked`."""
    response = _json_response(dumps(resource), status)
    version = resource.get("meta", {}).get("versionId")
    if version:  # what a later update sends back in If-Match
        response["ETag"] = f'W/"{version}"'
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _json_response(text: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type=f"{MEDIA_TYPE}; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def outcome(status: int, code: str, message: str, headers: dict | None = None, issues=()) -> HttpResponse:
    issues = [{"severity": "error", **issue} for issue in issues] or [
        {"severity": "error", "code": code, "diagnostics": message}]
    return respond(checked(OperationOutcome, {"resourceType": "OperationOutcome", "issue": issues}), status, headers)


def _authenticate(request, scope: str | None = READ_SCOPE):
    """The token's caller, as on /api/: the request then reads as that user through the selectors. A write
    checks its own scope once it knows what it does (`scope=None`)."""
    match = _BEARER.match(request.headers.get("Authorization", ""))
    caller = token_authenticate(match.group(1), on_behalf_of=request.headers.get("X-On-Behalf-Of", "")) \
        if match else None
    if caller is None:
        raise FhirError(401, "login", _("Jeton d'accès absent, invalide, expiré ou révoqué."))
    request.user, request.auth = caller.user, caller
    throttle = TokenRateThrottle()
    if not throttle.allow_request(request):
        wait = int(throttle.wait() or 1)
        raise FhirError(429, "throttled", _("Trop de requêtes : réessayez dans %(seconds)s s.") % {"seconds": wait})
    if scope is not None:
        require_scope(request, scope)
    return caller


def _not_allowed(request, allowed) -> HttpResponse:
    return outcome(405, "not-supported", _("Méthode %(method)s non proposée ici (proposées : %(allowed)s).")
                   % {"method": request.method, "allowed": ", ".join(allowed)}, {"Allow": ", ".join(allowed)})


def fhir_view(view=None, *, methods=("GET", "HEAD")):
    """`methods` only, `_format` json only, and every failure answered as an OperationOutcome. CSRF-exempt: there
    is no cookie session here to protect, and a refused method gets FHIR's 405 rather than Django's HTML 403.

    The services' refusals come back as FHIR expects them: a workflow refusal is 409 with the table's sentence, a
    validation error 422 (the write handlers name the element in `expression` before it gets here)."""
    if view is None:
        return functools.partial(fhir_view, methods=methods)

    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            if request.method not in methods:
                return _not_allowed(request, methods)
            if request.GET.get("_format", "json") not in _FORMATS:
                raise FhirError(406, "not-supported", _("Seul le format JSON est proposé (_format=json)."))
            return view(request, *args, **kwargs)
        except FhirError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return outcome(exc.status, exc.code, exc.message, headers, exc.issues)
        except Http404:
            return outcome(404, "not-found", _("Ressource introuvable."))
        except CallerError as exc:
            return outcome(403, "forbidden", str(exc))
        except ApiError as exc:  # the REST API's helpers used for the report PDF (pending, unreadable)
            return outcome(exc.status, _API_ISSUE.get(exc.status, "processing"), exc.message)
        except WorkflowError as exc:
            return outcome(409, "business-rule", str(exc))
        except ValidationError as exc:
            return outcome(422, "invalid", " ".join(exc.messages))

    wrapped.methods = tuple(methods)  # what the route serves, for the test that holds the statement to the routes
    return wrapped


def by_method(**views):
    """One URL, one view per HTTP method (HEAD goes with GET); any other method is answered 405."""
    allowed = [*views, *(["HEAD"] if "GET" in views else [])]

    @csrf_exempt
    def dispatch(request, *args, **kwargs):
        view = views.get("GET" if request.method == "HEAD" else request.method)
        if view is None:
            return _not_allowed(request, allowed)
        return view(request, *args, **kwargs)

    dispatch.methods = tuple(allowed)
    return dispatch


def read_view(resource_type: ResourceType):
    @fhir_view
    def read(request, pk: str):
        _authenticate(request)
        result = resource_type.read(request, pk)  # a resource, or the bytes themselves (Binary)
        return result if isinstance(result, HttpResponseBase) else respond(result)

    return read


def _written(request, result) -> HttpResponse:
    """A create or update answer: the resource (with its ETag), `Location` for a creation; 204 when the change
    took the resource out of the caller's sight (a transfer to another expert)."""
    if result.resource is None:
        return HttpResponse(status=204)
    headers = {"Location": f"{_base_url(request)}/{result.location}"} if result.location else None
    return respond(result.resource, result.status, headers)


def create_view(resource_type: ResourceType):
    @fhir_view(methods=("POST",))
    def create(request):
        _authenticate(request, scope=None)
        return _written(request, resource_type.create(request))

    return create


def update_view(resource_type: ResourceType):
    @fhir_view(methods=("PUT",))
    def update(request, pk: str):
        _authenticate(request, scope=None)
        return _written(request, resource_type.update(request, pk))

    return update


def system_view(handler):
    """`POST /fhir/`: a Bundle the handler answers with a Bundle (a transaction)."""

    @fhir_view(methods=("POST",))
    def system(request):
        _authenticate(request, scope=None)
        return _written(request, handler(request))

    return system


def _number(request, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not ascii_digits(raw):
        raise FhirError(400, "value", _("« %(name)s » doit être un nombre entier positif.") % {"name": name})
    return min(int(raw), maximum)


def _base_url(request) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/fhir"


def _includes(request, resource_type: ResourceType) -> set[str]:
    """The `_include` values asked for, as declared names; `Type:param:Target` names its target explicitly. One
    that is not declared is refused, like an unknown parameter: silently leaving it out would answer less."""
    declared = {include.name: include.target for include in resource_type.includes}
    names, unknown = set(), []
    for value in request.GET.getlist("_include"):
        source, _colon, rest = value.partition(":")
        param, _colon, target = rest.partition(":")
        name = f"{source}:{param}"
        if name in declared and target in ("", declared[name]):
            names.add(name)
        else:
            unknown.append(value)
    if unknown:
        raise FhirError(400, "not-supported", _("Inclusion non prise en charge : %(values)s. Valeurs possibles : "
                                                "%(known)s.") % {"values": ", ".join(unknown),
                                                                "known": ", ".join(declared)})
    return names


def search_view(resource_type: ResourceType):
    declared = {param.name: param for param in search_params(resource_type)}
    accepted = set(declared) | {"_format"} | ({"_include"} if resource_type.includes else set())

    @fhir_view
    def search(request):
        _authenticate(request)
        unknown = sorted(set(request.GET) - accepted)
        if unknown:  # an ignored filter would widen the answer silently: refuse it (FHIR "strict" handling)
            raise FhirError(400, "not-supported", _("Paramètre de recherche non pris en charge : %(names)s.")
                            % {"names": ", ".join(unknown)})
        includes = _includes(request, resource_type)
        # A repeated parameter narrows again (FHIR's AND); _count and _offset choose the page.
        params = [(declared[name], value) for name in request.GET if name in declared and name not in _PAGING
                  for value in request.GET.getlist(name)]
        count = _number(request, "_count", DEFAULT_COUNT, MAX_COUNT)
        offset = _number(request, "_offset", 0, 10**9)
        page, total = (compiled_search.search_page(resource_type, request.user, params, offset, count)
                       or _searched(request, resource_type, params, offset, count))
        audit_log(actor=request.user, action="case.list", kind=AuditEvent.Kind.READ, ip=client_ip(request),
                  summary=f"FHIR {resource_type.name}?{request.GET.urlencode()}"[:255])
        found = resource_type.render(request, page)
        return _json_response(_bundle(request, resource_type, found,
                                      included(request, resource_type, includes, page), total, offset, count))

    return search


def _searched(request, resource_type, params, offset: int, count: int) -> tuple[list, int]:
    """The page and the number of matches, through the ORM (what `compiled_search` does not compile)."""
    rows = resource_type.search_base(request.user)
    for param, value in params:
        rows = param.apply(rows, value)
    page = list(rows[offset:offset + count]) if count else []
    return page, page_total(page, offset, count, rows.count)


def _entry(base: str, resource: dict | Text, mode: str) -> str:
    """The entry's text: its fullUrl and search, checked, then the resource's text as it is."""
    if not isinstance(resource, Text):
        resource = Text(resource["resourceType"], resource["id"], dumps(resource))
    return f'{_entry_head(f"{base}/{resource.resource_type}/{resource.id}", mode)[:-1]},"resource":{resource.json}}}'


@functools.lru_cache(maxsize=50_000)
def _entry_head(full_url: str, mode: str) -> str:
    return dumps(checked(BundleEntry, {"fullUrl": full_url, "search": {"mode": mode}}))


def _bundle(request, resource_type, found, extra, total, offset, count) -> str:
    """The Bundle's text: matches first, then what `_include` added (`search.mode` include); `total` counts
    matches only.

    The envelope and each entry's fullUrl and search are checked apart, then the resources' texts are put in: each
    was checked when it was built, and checking them again inside the Bundle would double the cost of a page. An
    entry (a URL and a mode) is the same text page after page, and `checked` validates a text once; the
    envelope holds neither entries nor its timestamp when it is checked."""
    base = _base_url(request)
    links = [{"relation": "self", "url": f"{base}/{resource_type.name}?{request.GET.urlencode()}"}]
    if count and offset + count < total:  # `_count=0` asks for the total only: no page follows
        following = request.GET.copy()  # keeps repeated parameters (_lastUpdated ranges, several _include)
        following["_offset"] = str(offset + count)
        links.append({"relation": "next", "url": f"{base}/{resource_type.name}?{following.urlencode()}"})
    envelope = checked(Bundle, {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links})
    # Added once checked: an instant formatted here, always valid, would otherwise make each second's envelope a
    # text to validate again.
    envelope = dumps({**envelope, "timestamp": timezone.localtime().isoformat(timespec="seconds")})
    entries = [_entry(base, resource, mode) for resources, mode in ((found, "match"), (extra, "include"))
               for resource in resources]
    return f'{envelope[:-1]},"entry":[{",".join(entries)}]}}' if entries else envelope


def capability_statement() -> dict:
    """What the facade serves, read from the same table the URLs are made from."""
    served = [{
        "type": resource_type.name,
        "interaction": [{"code": code} for code in resource_type.interactions],
        **({"searchParam": [{"name": p.name, "type": p.type, "documentation": p.documentation}
                            for p in search_params(resource_type)]} if resource_type.search_base else {}),
        **({"searchInclude": [include.name for include in resource_type.includes]}
           if resource_type.includes else {}),
        # An update needs If-Match with the version read (ETag, meta.versionId); there is no create by PUT.
        **({"versioning": "versioned-update", "updateCreate": False} if resource_type.update else {}),
    } for resource_type in RESOURCES]
    return checked(CapabilityStatement, {
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "date": timezone.localdate().isoformat(), "fhirVersion": FHIR_VERSION, "format": ["json"],
        "software": {"name": "Téléexpertise"},
        "implementation": {"description": "Téléexpertise FHIR facade", "url": f"{settings.SITE_URL.rstrip('/')}/fhir"},
        "rest": [{"mode": "server", "resource": served, "security": {
            "description": "Authorization: Bearer <token> (personal token or organisation client token), as on "
                         f"/api/: scope {READ_SCOPE} to read, cases:write to create and update, reports:write for "
                         "the report (Task.output)."},
            "interaction": [{"code": code, "documentation": " ".join(handler.__doc__.split("\n\n")[0].split())}
                            for code, handler in SYSTEM_INTERACTIONS.items()]}],
    })


@fhir_view
def metadata(request):
    """Public, as FHIR expects: a client reads it before it has a token."""
    return respond(capability_statement())


@fhir_view(methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))
def unknown(request, rest: str):
    return outcome(404, "not-supported", _("Type de ressource ou opération non proposé : %(path)s.")
                   % {"path": rest})
