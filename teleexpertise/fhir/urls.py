"""/fhir/ routes, made from the declaration table: per resource type, the instance URL (read, and update when
declared) and the type URL (search and create, when declared); `/fhir/` takes the system interactions (a
transaction Bundle). `/fhir/metadata` describes the same table."""

from django.urls import path

from teleexpertise.fhir import views
from teleexpertise.fhir.table import RESOURCES, SYSTEM_INTERACTIONS

app_name = "fhir"

urlpatterns = [path("metadata", views.metadata, name="metadata"),
               path("", views.system_view(SYSTEM_INTERACTIONS["transaction"]), name="system")]
for _resource in RESOURCES:
    _instance = {"GET": views.read_view(_resource)}
    if _resource.update:
        _instance["PUT"] = views.update_view(_resource)
    urlpatterns.append(path(f"{_resource.name}/<str:pk>", views.by_method(**_instance),
                            name=f"{_resource.name}-read"))
    _type = {}
    if _resource.search_base:
        _type["GET"] = views.search_view(_resource)
    if _resource.create:
        _type["POST"] = views.create_view(_resource)
    if _type:
        urlpatterns.append(path(_resource.name, views.by_method(**_type), name=f"{_resource.name}-search"))
urlpatterns.append(path("<path:rest>", views.unknown, name="unknown"))
