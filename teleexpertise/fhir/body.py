"""A FHIR JSON request body, read from the stream with the files it carries kept out of memory.

A DocumentReference (or a transaction Bundle of them) carries each file as a base64 string in `attachment.data`:
a 500 MB file is 670 MB of JSON. The body is read in chunks; the string value of every `"data"` member is decoded
from base64 as it arrives, straight into an encrypted spool (`documents.spool`, as a multipart upload is), and
replaced in the JSON by a short token. The rest of the JSON, small, is parsed as usual, and the parser finds each
file by its token (`Body.take`).
"""

import binascii
import json
import re
import secrets

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from teleexpertise.core.digits import ascii_digits
from teleexpertise.documents.spool import Spool
from teleexpertise.fhir.handlers import FhirError

CHUNK = 1024 * 1024
OUTLINE_MAX = 1024 * 1024  # the JSON without its files: resources, not payloads
MEDIA_TYPES = ("application/fhir+json", "application/json")
_STRING_END = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"
_DATA_KEY = b"data"
# JSON escapes an encoder may put in a base64 string: "\/" for "/", and line breaks (MIME-style base64).
_DATA_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b"", ord("t"): b""}


class Body:
    """The parsed JSON (`resource`) and the spooled files its `data` members stood for."""

    def __init__(self, resource: dict, spools: dict[str, Spool]):
        self.resource, self._spools = resource, spools

    def take(self, token) -> Spool | None:
        """The file a `data` member carried; None for a value that is not one of this body's tokens."""
        return self._spools.pop(token, None) if isinstance(token, str) else None

    def discard(self) -> None:
        """Forget every file not taken (and those taken but never stored: discarding a stored one is a no-op)."""
        for spool in self._spools.values():
            spool.discard()
        self._spools.clear()


def read_body(request) -> Body:
    """The request's FHIR JSON; 415 for another media type, 413 when too large, 400 when unreadable."""
    media_type = request.content_type or ""
    if media_type not in MEDIA_TYPES:
        raise FhirError(415, "not-supported", _("Corps attendu en JSON FHIR (Content-Type: application/fhir+json)."))
    length = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.DOCUMENT_MAX_CASE_BYTES * 4 // 3 + OUTLINE_MAX
    if not ascii_digits(length) or int(length) > limit:
        raise FhirError(413, "too-long", _("Corps de la requête trop volumineux : %(limit)s au plus.")
                        % {"limit": filesizeformat(limit)})
    reader = _Reader()
    try:
        while chunk := request.read(CHUNK):
            reader.feed(chunk)
        return Body(reader.resource(), reader.spools)
    except BaseException:
        reader.discard()
        raise


def _unreadable(detail: str = "") -> FhirError:
    message = _("Le corps de la requête n'est pas du JSON lisible.")
    return FhirError(400, "structure", f"{message} {detail}".strip())


class _Reader:
    """A small JSON lexer: it knows strings, keys and escapes, which is all it takes to find `"data": "..."`.

    Outside the data strings the bytes are copied to `outline` as they are; `between` keeps what stands between
    the last string and the next one, to tell a key (`"data"` followed by `:`) from a value.
    """

    def __init__(self):
        self.outline = bytearray()
        self.spools: dict[str, Spool] = {}
        self._nonce = secrets.token_hex(4)
        self._state = self._outside
        self._key = b""  # the last string read, when short enough to be "data"
        self._between = b""
        self._escaped = False  # the previous chunk ended on a backslash
        self._data: _Base64Spool | None = None

    def feed(self, chunk: bytes) -> None:
        position = 0
        while position < len(chunk):
            position = self._state(chunk, position)
        if len(self.outline) > OUTLINE_MAX:
            raise FhirError(413, "too-long", _("Ressource trop volumineuse hors pièces jointes : %(limit)s au plus.")
                            % {"limit": filesizeformat(OUTLINE_MAX)})

    def _outside(self, chunk: bytes, position: int) -> int:
        quote = chunk.find(b'"', position)
        end = len(chunk) if quote < 0 else quote
        self.outline += chunk[position:end]
        self._between = (self._between + chunk[position:end].translate(None, _WHITESPACE))[:2]
        if quote < 0:
            return end
        if self._key == _DATA_KEY and self._between == b":":
            self._data = _Base64Spool()
            self._state = self._in_data
        else:
            self._string_start = len(self.outline) + 1
            self.outline += b'"'
            self._state = self._in_string
        self._key, self._between = b"", b""
        return quote + 1

    def _in_string(self, chunk: bytes, position: int) -> int:
        if self._escaped:  # the escaped byte, whatever it is, belongs to the string
            self.outline += chunk[position:position + 1]
            self._escaped = False
            return position + 1
        match = _STRING_END.search(chunk, position)
        end = len(chunk) if match is None else match.start()
        self.outline += chunk[position:end]
        if match is None:
            return end
        self.outline += chunk[end:end + 1]
        if chunk[end:end + 1] == b"\\":
            self._escaped = True
        else:
            content = self.outline[self._string_start:-1]
            self._key = bytes(content) if len(content) <= len(_DATA_KEY) else b""
            self._state = self._outside
        return end + 1

    def _in_data(self, chunk: bytes, position: int) -> int:
        if self._escaped:
            replacement = _DATA_ESCAPES.get(chunk[position])
            if replacement is None:
                raise _unreadable(_("Caractère invalide dans des données base64."))
            self._data.write(replacement)
            self._escaped = False
            return position + 1
        match = _STRING_END.search(chunk, position)
        end = len(chunk) if match is None else match.start()
        self._data.write(chunk[position:end])
        if match is None:
            return end
        if chunk[end:end + 1] == b"\\":
            self._escaped = True
        else:
            token = f"{self._nonce}{len(self.spools):04d}"
            self.spools[token] = self._data.finish()
            self._data = None
            self.outline += f'"{token}"'.encode()
            self._state = self._outside
        return end + 1

    def resource(self) -> dict:
        if self._state != self._outside or self._escaped:
            raise _unreadable(_("Il est incomplet."))
        try:
            resource = json.loads(self.outline)
        except (ValueError, RecursionError):
            raise _unreadable() from None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise _unreadable(_("Une ressource FHIR (avec « resourceType ») est attendue."))
        return resource

    def discard(self) -> None:
        if self._data is not None:
            self._data.spool.discard()
        for spool in self.spools.values():
            spool.discard()


class _Base64Spool:
    """base64 text in, decoded bytes out to an encrypted spool, four characters at a time."""

    def __init__(self):
        self.spool = Spool()
        self._pending = b""
        self._padded = False
        self._size = 0

    def write(self, text: bytes) -> None:
        text = self._pending + text.translate(None, _WHITESPACE)
        whole = len(text) // 4 * 4
        self._pending = text[whole:]
        if whole:
            self._decode(text[:whole])

    def _decode(self, text: bytes) -> None:
        if self._padded:  # "=" ends the data: nothing may follow it
            raise _unreadable(_("Données base64 invalides."))
        try:
            data = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            raise _unreadable(_("Données base64 invalides.")) from None
        self._padded = text.endswith(b"=")
        self._size += len(data)
        if self._size > settings.DOCUMENT_MAX_FILE_BYTES:
            raise FhirError(413, "too-long", _("Fichier trop volumineux : %(limit)s au plus par fichier.")
                            % {"limit": filesizeformat(settings.DOCUMENT_MAX_FILE_BYTES)})
        self.spool.write(data)

    def finish(self) -> Spool:
        if self._pending:
            raise _unreadable(_("Données base64 invalides."))
        self.spool.finish()
        return self.spool
