from django.urls import path

from teleexpertise.documents import views

app_name = "documents"
urlpatterns = [
    path("cases/<uuid:pk>/documents/", views.document_upload, name="upload"),
    path("cases/<uuid:pk>/dicom/<str:series_uid>/", views.dicom_series_view, name="series"),
    path("documents/<uuid:pk>/", views.document_view, name="view"),
    path("documents/<uuid:pk>/file", views.document_download, name="download"),
    path("documents/<uuid:pk>/preview", views.document_preview, name="preview"),
]
