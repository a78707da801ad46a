from django.urls import path

from teleexpertise.cases import views

app_name = "cases"
urlpatterns = [
    path("cases/", views.inbox, name="inbox"),
    path("cases/new/", views.case_new, name="new"),
    path("cases/live.json", views.inbox_live, name="inbox_live"),
    path("cases/<uuid:pk>/live.json", views.case_live, name="live"),
    path("cases/<uuid:pk>/", views.case_detail, name="detail"),
    path("cases/<uuid:pk>/edit/", views.case_edit, name="edit"),
    path("cases/<uuid:pk>/do/<slug:action>/", views.case_action, name="action"),
    path("cases/<uuid:pk>/messages/", views.case_message, name="message"),
    path("cases/<uuid:pk>/follow-up/", views.case_follow_up, name="follow_up"),
    path("patients/<uuid:pk>/", views.patient_detail, name="patient"),
]
