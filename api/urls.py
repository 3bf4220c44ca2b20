from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from api import account_views, docs, views

app_name = "api"

urlpatterns = [
    path("api/v1/projects/", views.projects, name="projects"),
    path("api/v1/projects/<slug:slug>/", views.project_detail, name="project_detail"),
    path("api/v1/projects/<slug:slug>/comparisons/", views.comparisons, name="comparisons"),
    path("api/v1/projects/<slug:slug>/judgments/", views.judgments, name="judgments"),
    path("api/v1/projects/<slug:slug>/exports/", views.exports, name="exports"),
    path("api/v1/projects/<slug:slug>/metrics/", views.metrics, name="metrics"),
    path("api/v1/projects/<slug:slug>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "api/v1/projects/<slug:slug>/webhooks/<int:pk>/",
        views.webhook_detail,
        name="webhook_detail",
    ),
    path("api/v1/exports/<int:pk>/", views.export_detail, name="export_detail"),
    path("api/v1/exports/<int:pk>/download", views.export_download, name="export_download"),
    path("api/v1/imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", docs.api_docs, name="docs"),
    re_path(r"^api/(?P<rest>[\s\S]*)$", views.not_found, name="not_found"),  # newlines too
    # The account page for one's own tokens (session login, CSRF like every form).
    path("accounts/tokens/", account_views.tokens_page, name="tokens"),
    path("accounts/tokens/<int:pk>/revoke", account_views.revoke, name="token_revoke"),
]
