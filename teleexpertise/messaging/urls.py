from django.urls import path

from teleexpertise.messaging import views

app_name = "messaging"
urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notification_mark_read, name="mark_read"),
]
