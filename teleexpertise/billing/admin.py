"""The rules are edited here as dated rows; billing records are read-only (append-only, status by their owner)."""

from django.contrib import admin

from teleexpertise.billing.models import BillingRecord, Parameter, Tariff
from teleexpertise.core.admin import ReadOnlyModelAdmin


class DatedRuleAdmin(admin.ModelAdmin):
    """A rule already used by a billing record keeps its values: close it and add the next one instead."""

    frozen_fields: tuple = ()

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and self.is_used(obj):
            return self.frozen_fields
        return ()

    def has_delete_permission(self, request, obj=None):
        return obj is None or not self.is_used(obj)

    def is_used(self, obj) -> bool:
        return False


@admin.register(Tariff)
class TariffAdmin(DatedRuleAdmin):
    list_display = ("act_code", "profession", "amount", "valid_from", "valid_to", "source")
    list_filter = ("act_code", "profession")
    frozen_fields = ("act_code", "profession", "amount", "valid_from", "cumulable", "excess_fee_allowed",
                     "coverage_percent", "third_party_payment")

    def is_used(self, obj) -> bool:
        return obj.records.exists()


@admin.register(Parameter)
class ParameterAdmin(DatedRuleAdmin):
    list_display = ("key", "value", "valid_from", "valid_to", "source")
    list_filter = ("key",)
    frozen_fields = ("key", "value", "valid_from")

    def is_used(self, obj) -> bool:
        return BillingRecord.objects.filter(limit_rule=obj).exists()


@admin.register(BillingRecord)
class BillingRecordAdmin(ReadOnlyModelAdmin):
    list_display = ("act_date", "act_code", "professional_name", "amount", "billable", "limit_reached", "status")
    list_filter = ("act_code", "status", "billable", "limit_reached")
    search_fields = ("case__reference", "professional_name", "rpps", "adeli")
    date_hierarchy = "act_date"
