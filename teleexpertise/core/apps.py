from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "teleexpertise.core"
    label = "core"
