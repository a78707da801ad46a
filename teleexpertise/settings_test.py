"""Settings for the test suite: the main settings with fast, sealed parts (no network, jobs run inline)."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "1")  # allows the development key; Django itself turns DEBUG off in tests
os.environ.setdefault("JOBS_IMMEDIATE", "1")
# A fixed test master key (32 zero-to-31 bytes, base64): never used outside tests.
os.environ.setdefault("DOCUMENT_MASTER_KEYS", "test-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
os.environ.setdefault("DOCUMENT_ACTIVE_KEY_ID", "test-1")

from teleexpertise.settings import *  # noqa: E402,F403

DOCUMENT_ROOT = Path(tempfile.mkdtemp(prefix="te-test-documents-"))  # never the project's var/
atexit.register(shutil.rmtree, DOCUMENT_ROOT, ignore_errors=True)
DMP_OUTBOX_DIR = tempfile.mkdtemp(prefix="te-test-dmp-outbox-")  # never the project's var/
atexit.register(shutil.rmtree, DMP_OUTBOX_DIR, ignore_errors=True)
DIRECTORY_IMPORT_DIR = tempfile.mkdtemp(prefix="te-test-directory-imports-")  # never the project's var/
atexit.register(shutil.rmtree, DIRECTORY_IMPORT_DIR, ignore_errors=True)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: never used outside tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
HUEY["immediate"] = True  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
