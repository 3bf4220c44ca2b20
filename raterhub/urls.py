from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.views import admin_login_view

urlpatterns = [
    path("", RedirectView.as_view(url="/rate/", permanent=False)),
    # Browsers ask for /favicon.ico whatever the page links; answer instead of logging a 404.
    path("favicon.ico", lambda request: redirect(static("favicon.svg"))),
    # One login and one password-change page, allauth's, with its rate limits: the admin's
    # own forms (matched first here) hand over to them.
    path("admin/login/", admin_login_view),
    path(
        "admin/password_change/",
        RedirectView.as_view(pattern_name="account_change_password", permanent=False),
    ),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),  # /api/…, and /accounts/tokens/
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("comparisons.urls")),
    path("", include("ops.urls")),
]
