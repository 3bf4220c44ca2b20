"""Account pages of RaterHub's own: the invite page (the one way a new rater gets an account;
open sign-up is closed), the e-mail page that replaces allauth's, and the admin's login hand-over.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.forms import AcceptInviteForm
from accounts.invites import InviteMismatch, InviteUnusable, accept_invite, existing_account
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
    signed_in_as_account = account is not None and request.user.pk == account.pk
    # An account that exists accepts only once signed in as itself: then login returns here.
    login_url = f"{reverse('account_login')}?{urlencode({'next': request.path})}"
    form = None
    if account is None:
        form = AcceptInviteForm(invite.email, request.POST if request.method == "POST" else None)

    if request.method == "POST":
        if form is not None and form.is_valid():
            return _accept(request, invite, password=form.cleaned_data["new_password1"])
        if signed_in_as_account:
            return _accept(request, invite, user=request.user)
        if account is not None and not request.user.is_authenticated:
            return redirect(login_url)

    return render(
        request,
        "accounts/invite_accept.html",
        {
            "invite": invite,
            "projects": list(invite.projects.all()),
            "form": form,
            "account": account,
            "signed_in_as_account": signed_in_as_account,
            "login_url": login_url,
        },
    )


def _accept(request: HttpRequest, invite: Invite, **how) -> HttpResponse:
    try:
        user, created = accept_invite(invite=invite, **how)
    except InviteUnusable:
        return _invalid(request)
    except InviteMismatch:
        # An account got the address meanwhile: the page now asks its owner to sign in.
        return redirect(request.path)
    if created:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to RaterHub! Your account is ready.")
    else:
        messages.success(request, "You have joined the invited projects.")
    return redirect(settings.LOGIN_REDIRECT_URL)


@login_required
@require_GET
def email_view(request: HttpRequest) -> HttpResponse:
    """Stands in for allauth's /accounts/email/, which let anyone add and make primary any
    address, even one another person holds or is about to be invited with. Nobody changes
    their own address here: an administrator does, in the user admin."""
    return render(request, "accounts/email.html")


def admin_login_view(request: HttpRequest) -> HttpResponse:
    """Stands in for the admin's login form, which checked passwords with no rate limit: every
    password login goes through allauth's login page and its lockout, then on to `next`."""
    if request.user.is_authenticated and not admin.site.has_permission(request):
        # allauth would send a signed-in user straight back to `next`, the admin: a loop.
        messages.error(request, "Your account has no access to the admin.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
