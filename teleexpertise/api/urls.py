from django.urls import path

from teleexpertise.api import views

app_name = "api_tokens"

urlpatterns = [
    path("api-tokens/", views.token_list, name="list"),
    path("api-tokens/<uuid:token_id>/revoke", views.token_revoke, name="revoke"),
]
