"""The account page where a user makes and revokes personal API tokens (a token is shown once)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from teleexpertise.api import services
from teleexpertise.api.forms import PersonalTokenForm
from teleexpertise.audit.services import client_ip


@login_required
def token_list(request):
    form = PersonalTokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        _token, secret = services.personal_token_create(
            user=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
            days=form.cleaned_data["days"], ip=client_ip(request))
        form = PersonalTokenForm()
    status = 400 if request.method == "POST" and secret is None else 200
    return render(request, "api/tokens.html", {"form": form, "secret": secret,
                                               "tokens": services.personal_tokens_of(request.user)}, status=status)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = services.personal_token_revoke(user=request.user, token_id=token_id, ip=client_ip(request))
    messages.success(request, _("Jeton « %(name)s » révoqué.") % {"name": token.name})
    return redirect("api_tokens:list")
