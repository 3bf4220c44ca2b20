from django.urls import path

from comparisons import dashboard, export_views, import_views, review_views, views

urlpatterns: list = [
    # The rating pages (views.py).
    path("rate/", views.rate_index, name="rate_index"),
    path("rate/<slug:slug>/", views.rate_project, name="rate_project"),
    path("rate/<slug:slug>/<int:pk>/submit", views.rate_submit, name="rate_submit"),
    path("rate/<slug:slug>/<int:pk>/skip", views.rate_skip, name="rate_skip"),
    path("rate/<slug:slug>/<int:pk>/heartbeat", views.rate_heartbeat, name="rate_heartbeat"),
    # The review page (review_views.py): the project's reviewers and staff leads.
    path("review/<slug:slug>/", review_views.review_project, name="review_project"),
    path("review/<slug:slug>/<int:pk>/submit", review_views.review_submit, name="review_submit"),
    path("review/<slug:slug>/<int:pk>/skip", review_views.review_skip, name="review_skip"),
    path("rate/<slug:slug>/judgments/<int:pk>/revise", views.rate_revise, name="rate_revise"),
    # Export downloads (export_views.py): authenticated, never a public URL.
    path("exports/<int:pk>/download", export_views.export_download, name="export_download"),
    path("exports/<int:pk>/manifest", export_views.export_manifest, name="export_manifest"),
    path("exports/<int:pk>/progress", export_views.export_progress, name="export_progress"),
    # An import job's live status (import_views.py), polled by the admin.
    path("imports/<int:pk>/progress", import_views.import_progress, name="import_progress"),
    # The lead dashboard (dashboard.py): staff leads of the project and superusers.
    path("dashboard/<slug:slug>/", dashboard.project_dashboard, name="project_dashboard"),
    path(
        "dashboard/<slug:slug>/recompute",
        dashboard.project_dashboard_recompute,
        name="project_dashboard_recompute",
    ),
    path(
        "dashboard/<slug:slug>/status",
        dashboard.project_dashboard_status,
        name="project_dashboard_status",
    ),
    path(
        "dashboard/project/<int:pk>/",
        dashboard.project_dashboard_by_pk,
        name="project_dashboard_by_pk",
    ),
]
