"""Staff views of webhooks: subscriptions and the delivery log, read-only (clients manage theirs through the API;
the secret is never shown), with a "resend" action on deliveries that goes through the audited service."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from teleexpertise.audit.services import client_ip
from teleexpertise.core.admin import ReadOnlyModelAdmin
from teleexpertise.webhooks import services
from teleexpertise.webhooks.models import WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyModelAdmin):
    list_display = ("url", "client", "active", "consecutive_failures", "disabled_at", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "client__name", "client__client_id", "client__organisation__name")
    exclude = ("secret",)
    list_select_related = ("client__organisation",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "event_type", "subscription", "status", "attempts", "last_status_code",
                    "next_attempt_at", "delivered_at")
    list_filter = ("status", "event_type")
    search_fields = ("=id", "=event_id", "=case_id", "subscription__url", "subscription__client__name")
    list_select_related = ("subscription__client",)
    actions = ["resend"]

    @admin.action(description=_("Renvoyer les envois sélectionnés (nouvel envoi du même événement)"))
    def resend(self, request, queryset):
        sent, refused = 0, []
        for delivery in queryset.select_related("subscription__client"):
            try:
                services.delivery_redeliver(delivery=delivery, user=request.user, ip=client_ip(request))
                sent += 1
            except services.DeliveryRefused as exc:
                refused.append(f"{delivery.pk} : {exc}")
        if sent:
            self.message_user(request, ngettext("%(n)s envoi relancé.", "%(n)s envois relancés.", sent) % {"n": sent},
                              messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)
