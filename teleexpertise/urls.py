from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from teleexpertise.api.api import api
from teleexpertise.core.views import healthz

admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)  # the admin goes through the same login and 2FA
admin.site.site_header = "Téléexpertise — administration"

urlpatterns = [
    # Software's calls first: every URL is tried in order, and the pages' includes below hold a hundred patterns
    # that an API call would otherwise be matched against (a tenth of a thread read's CPU). Nothing below starts
    # with api/ or fhir/.
    path("api/", api.urls),
    path("fhir/", include("teleexpertise.fhir.urls")),
    path("", RedirectView.as_view(pattern_name="cases:inbox", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("teleexpertise.cases.urls")),
    path("", include("teleexpertise.reports.urls")),
    path("", include("teleexpertise.reports.patient_urls")),
    path("", include("teleexpertise.messaging.urls")),
    path("", include("teleexpertise.documents.urls")),
    path("", include("teleexpertise.billing.urls")),
    path("", include("teleexpertise.directory.urls")),
    path("", include("teleexpertise.api.urls")),
]
