"""Administrators add and edit the structured request forms (FHIR Questionnaire JSON, validated on save)."""

from django.contrib import admin
from django.db import transaction

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases.models import RequestForm


@admin.register(RequestForm)
class RequestFormAdmin(admin.ModelAdmin):
    list_display = ("title", "specialty", "blocks_incomplete", "is_active", "updated_at")
    list_filter = ("is_active", "blocks_incomplete", "specialty")
    search_fields = ("title",)
    filter_horizontal = ("networks",)
    # The Questionnaire is checked by RequestForm.clean() (fhir.resources R4B, then the platform's own rules),
    # which the admin's ModelForm runs before anything is saved.

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_log(actor=request.user, action="request_form.save",
                      kind=AuditEvent.Kind.UPDATE if change else AuditEvent.Kind.CREATE, obj=obj,
                      ip=client_ip(request), summary=obj.title)
