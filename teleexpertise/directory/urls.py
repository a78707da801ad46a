from django.urls import path

from teleexpertise.directory import views

app_name = "directory"
urlpatterns = [
    path("networks/<uuid:pk>/rota/", views.rota, name="rota"),
    path("networks/<uuid:pk>/rota/<uuid:shift_id>/remove/", views.rota_remove, name="rota_remove"),
    path("directory/", views.search, name="search"),
    path("directory/imports/", views.import_list, name="imports"),
    path("directory/imports/<uuid:pk>/", views.import_detail, name="import_detail"),
    path("directory/imports/<uuid:pk>/progress", views.import_progress, name="import_progress"),
    path("directory/imports/<uuid:pk>/rejected.csv", views.import_report, name="import_report"),
]
