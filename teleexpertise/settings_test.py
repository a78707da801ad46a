"""Settings for the test suite: the main settings with fast, sealed parts (no network, jobs run inline)."""

import os

os.environ.setdefault("DEBUG", "1")  # allows the development key; Django itself turns DEBUG off in tests
os.environ.setdefault("JOBS_IMMEDIATE", "1")

from teleexpertise.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: never used outside tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
HUEY["immediate"] = True  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
