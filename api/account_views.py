"""/accounts/tokens/: a user's own API tokens, listed, created (the key shown once) and revoked."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api.forms import NewTokenForm
from api.models import ApiToken
from api.permissions import leads_something
from api.tokens import issue_token, revoke_token


def _get_token_for_user(request: HttpRequest, pk: int) -> ApiToken:
    return get_object_or_404(ApiToken.objects.filter(user=request.user), pk=pk)


@never_cache  # the page that shows a new key must not sit in a cache
@login_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    new_key = None
    form = NewTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, new_key = issue_token(
            user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at()
        )
        form = NewTokenForm()
    tokens = list(ApiToken.objects.filter(user=request.user))
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": tokens,
            "new_key": new_key,
            "can_use_api": leads_something(request.user),
        },
    )


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = _get_token_for_user(request, pk)
    revoke_token(token)
    messages.success(request, f"Revoked “{token}”. Scripts using it now get 401.")
    return redirect("api:tokens")
