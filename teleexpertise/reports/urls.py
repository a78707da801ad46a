from django.urls import path

from teleexpertise.reports import views

app_name = "reports"
urlpatterns = [path("cases/<uuid:pk>/report/", views.report_edit, name="edit")]
