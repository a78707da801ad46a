from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ApiConfig(AppConfig):
    name = "teleexpertise.api"
    label = "api"
    verbose_name = gettext_lazy("API pour les logiciels")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from teleexpertise.api import token_cache
        from teleexpertise.api.models import ApiClient, ApiToken
        from teleexpertise.directory.models import Organisation, Professional

        # What a kept token carries: the token, its client, its user, their professional and organisations.
        for model in (ApiToken, ApiClient, get_user_model(), Professional, Organisation):
            post_save.connect(token_cache.on_saved, sender=model, dispatch_uid=f"token-cache-{model._meta.label}")
            post_delete.connect(token_cache.on_saved, sender=model, dispatch_uid=f"token-cache-del-{model._meta.label}")
