"""Admin pieces shared by the apps."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows the admin may list and read but never add, change or delete: they are written by services only
    (append-only records, secrets shown once), so every change keeps its audit event."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
