from django.conf import settings
from django.utils.functional import SimpleLazyObject


def platform(request):
    def unread():
        from teleexpertise.messaging.selectors import unread_notification_count

        return unread_notification_count(request.user) if request.user.is_authenticated else 0

    # Lazy: only pages that show the header pay for the count.
    return {"DEMO_MODE": settings.DEMO_MODE, "LANGUAGES": settings.LANGUAGES,
            "unread_notifications": SimpleLazyObject(unread)}
