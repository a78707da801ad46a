from django.urls import path

from teleexpertise.billing import views

app_name = "billing"
urlpatterns = [
    path("billing/acts/", views.my_acts, name="acts"),
    path("billing/acts/<uuid:pk>/status", views.set_status, name="status"),
    path("billing/acts/export.<str:fmt>", views.export_mine, name="export"),
    path("billing/activity/", views.activity, name="activity"),
    path("billing/admin/", views.overview, name="overview"),
    path("billing/admin/export.csv", views.overview_export, name="overview_export"),
]
