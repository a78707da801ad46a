from django.contrib import admin

from teleexpertise.api.models import ApiClient, ApiToken
from teleexpertise.core.admin import ReadOnlyModelAdmin


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyModelAdmin):
    """Read-only: clients are made and revoked by `manage.py api_client_create / api_client_revoke`, which show
    the secret once and audit the change."""

    list_display = ("name", "organisation", "client_id", "scopes", "created_at", "revoked_at")
    search_fields = ("name", "client_id", "organisation__name")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "kind", "user", "client", "prefix", "scopes", "created_at", "last_used_at",
                    "expires_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("name", "prefix", "user__email")
