import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "teleexpertise.settings")
application = get_wsgi_application()
# Import the URLconf and every view it names now, as each server process starts: left to the first request, it
# took that request one to two seconds of CPU per process (the FHIR models build their validators on import), and
# the first calls after a start or a restart waited for it.
_views = get_resolver().url_patterns
