"""The only pages reached without an account: the patient's link (token in the path, birth date asked)."""

from django.urls import path

from teleexpertise.reports import patient_views

app_name = "patient"
urlpatterns = [
    path("p/<str:token>", patient_views.patient_link, name="link"),
    path("p/<str:token>/pdf", patient_views.patient_link_pdf, name="pdf"),
    path("p/<str:token>/fin", patient_views.patient_link_end, name="end"),
]
