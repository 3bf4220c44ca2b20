"""Webhooks in the admin: a lead configures their projects' webhooks and sees every delivery
with each of its attempts (status, answer, error). Tokens: superusers only (users manage their
own on /accounts/tokens/)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import admin
from django.db import models

from api.models import ApiToken, Webhook, WebhookAttempt, WebhookDelivery
from api.webhooks import start_position
from comparisons.admin import visible_projects
from comparisons.admin_cells import when_column


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "project", "active", "created_at")
    list_filter = ("active",)
    list_select_related = ("project",)
    readonly_fields = ("created_at", "judgments_seen_through", "project_completed_sent")
    fields = ("project", "url", "events", "active", "secret", *readonly_fields)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).filter(project__in=visible_projects(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = visible_projects(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.judgments_seen_through = start_position(obj.project)
        super().save_model(request, obj, form, change)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        url_field = form.base_fields.get("url")
        if url_field is not None:
            from api.webhooks import check_webhook_url

            url_field.validators = [*url_field.validators, check_webhook_url]
        return form


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "status_code", "ok", "duration_ms", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event",
        "webhook_cell",
        "status",
        "attempts",
        "created_at_short",
        "finished_at_short",
    )
    list_filter = ("status", "event")
    list_select_related = ("webhook__project",)
    created_at_short = when_column("created_at", "Created")
    finished_at_short = when_column("finished_at", "Finished")

    @admin.display(description="Webhook", ordering="webhook")
    def webhook_cell(self, obj: WebhookDelivery) -> str:
        # The project and the receiver's host: a full URL took half the width of the list.
        return f"{obj.webhook.project} → {urlsplit(obj.webhook.url).hostname}"

    inlines = [WebhookAttemptInline]
    readonly_fields = (
        "webhook",
        "event",
        "key",
        "body",
        "status",
        "attempts",
        "created_at",
        "finished_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(webhook__project__in=visible_projects(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_select_related = ("user",)
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at")
    fields = (*readonly_fields, "revoked_at")
    search_fields = ("name", "prefix", "user__email")

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser
