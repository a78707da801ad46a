"""JSON log lines: one object a line, easy to ship to any collector."""

import json
import logging
import re
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Values passed through `extra=` become fields of their own.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_PATIENT_LINK = re.compile(r"(/p/)[A-Za-z0-9_-]+")


class RedactPatientLinks(logging.Filter):
    """A patient's link (/p/<token>) opens their report with a birth date: the token never reaches the logs.

    Applies to every line through the handlers (gunicorn's access log, Django's 4xx warnings and the request
    they carry as an extra field), so a path or a referer is logged as /p/[masqué].
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/p/" in message:
            record.msg, record.args = _PATIENT_LINK.sub(r"\1[masqué]", message), None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and not name.startswith("_") and "/p/" in str(value):
                setattr(record, name, _PATIENT_LINK.sub(r"\1[masqué]", str(value)))
        return True
