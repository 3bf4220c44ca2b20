from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("invite/<str:token>/", views.accept_invite_view, name="accept_invite"),
]
