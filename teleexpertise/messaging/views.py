from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from teleexpertise.messaging.selectors import notifications_for
from teleexpertise.messaging.services import notifications_mark_read


@login_required
def notification_list(request):
    return render(request, "messaging/notifications.html", {"notifications": notifications_for(request.user)})


@login_required
@require_POST
def notification_mark_read(request):
    notifications_mark_read(user=request.user)
    return redirect("messaging:notifications")
