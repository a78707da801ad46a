"""gunicorn settings used by `manage.py serve`: its own logs as JSON lines too."""

accesslog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "teleexpertise.core.logging.JsonFormatter"}},
    "filters": {"redact": {"()": "teleexpertise.core.logging.RedactPatientLinks"}},  # patient link tokens
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
