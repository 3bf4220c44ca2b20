"""The invite page: the one way a new rater gets an account (open sign-up is closed)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from accounts.forms import AcceptInviteForm
from accounts.invites import InviteUnusable, accept_invite, existing_account
from accounts.models import Invite


def _invalid(request: HttpRequest) -> HttpResponse:
    # One page for unknown, used and expired tokens: it tells the invitee what to do and
    # does not reveal which invites exist.
    return render(request, "accounts/invite_invalid.html", status=404)


@never_cache
def accept_invite_view(request: HttpRequest, token: str) -> HttpResponse:
    invite = Invite.find_usable(token)
    if invite is None:
        return _invalid(request)
    account = existing_account(invite)
    projects = list(invite.projects.all())
    data = request.POST if request.method == "POST" else None
    form = None if account else AcceptInviteForm(invite.email, data)

    if request.method == "POST" and (form is None or form.is_valid()):
        password = form.cleaned_data["new_password1"] if form else None
        try:
            user, created = accept_invite(invite=invite, password=password)
        except InviteUnusable:
            return _invalid(request)
        if created:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to RaterHub! Your account is ready.")
            return redirect(settings.LOGIN_REDIRECT_URL)
        messages.success(request, "You have joined the invited projects.")
        if request.user.is_authenticated and request.user.pk == user.pk:
            return redirect(settings.LOGIN_REDIRECT_URL)
        # An invite link proves access to the mailbox, not the right to an existing account
        # (a lead can see the link): the owner signs in with their own password.
        login_url = reverse("account_login")
        return redirect(f"{login_url}?{urlencode({'next': settings.LOGIN_REDIRECT_URL})}")

    return render(
        request,
        "accounts/invite_accept.html",
        {"invite": invite, "projects": projects, "form": form, "account": account},
    )
