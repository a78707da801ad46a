from django.contrib import admin

from teleexpertise.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Search of the trail for administrators; read-only by construction."""

    list_display = ("at", "actor_label", "action", "kind", "object_type", "case_id", "ip", "summary")
    list_filter = ("kind", "action", "at")
    search_fields = ("actor_label", "action", "summary", "object_id", "=case_id", "=patient_id")
    date_hierarchy = "at"
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
