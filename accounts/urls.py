from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("invite/<str:token>/", views.accept_invite_view, name="accept_invite"),
    # Before allauth's own /accounts/email/ (included after these), under the name allauth's
    # redirects use: nobody manages their own addresses (see views.email_view).
    path("email/", views.email_view, name="account_email"),
]
