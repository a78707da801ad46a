from django.urls import path

from teleexpertise.directory import views

app_name = "directory"
urlpatterns = [
    path("networks/<uuid:pk>/rota/", views.rota, name="rota"),
    path("networks/<uuid:pk>/rota/<uuid:shift_id>/remove/", views.rota_remove, name="rota_remove"),
]
