"""/fhir/ routes, made from the declaration table: one read route per resource type, one search route for the
types that declare a search. `/fhir/metadata` describes the same table."""

from django.urls import path

from teleexpertise.fhir import views
from teleexpertise.fhir.handlers import RESOURCES

app_name = "fhir"

urlpatterns = [path("metadata", views.metadata, name="metadata")]
for _resource in RESOURCES:
    urlpatterns.append(path(f"{_resource.name}/<str:pk>", views.read_view(_resource), name=f"{_resource.name}-read"))
    if _resource.search_base:
        urlpatterns.append(path(_resource.name, views.search_view(_resource), name=f"{_resource.name}-search"))
urlpatterns.append(path("<path:rest>", views.unknown, name="unknown"))
