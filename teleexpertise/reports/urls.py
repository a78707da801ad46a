from django.urls import path

from teleexpertise.reports import views

app_name = "reports"
urlpatterns = [
    path("cases/<uuid:pk>/report/", views.report_edit, name="edit"),
    path("reports/<uuid:version_pk>/pdf", views.report_pdf_download, name="pdf"),
    path("reports/<uuid:version_pk>/pdf/retry", views.report_pdf_retry, name="pdf_retry"),
    path("reports/<uuid:version_pk>/cda", views.report_cda_download, name="cda"),
    path("reports/<uuid:version_pk>/dmp/retry", views.report_dmp_retry, name="dmp_retry"),
    path("reports/deliveries/<uuid:delivery_pk>/retry", views.report_delivery_retry, name="delivery_retry"),
    path("cases/<uuid:pk>/patient-access/", views.patient_link_new, name="patient_link_new"),
    path("cases/<uuid:pk>/patient-access/<uuid:link_pk>/revoke", views.patient_link_revoke,
         name="patient_link_revoke"),
]
