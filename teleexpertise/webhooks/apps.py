from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class WebhooksConfig(AppConfig):
    name = "teleexpertise.webhooks"
    label = "webhooks"
    verbose_name = gettext_lazy("Webhooks des logiciels d'organisation")
