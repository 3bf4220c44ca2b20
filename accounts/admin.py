"""Accounts in the admin: e-mail based users and invitations.

Leads (the "Project leads" group) may view, add and change raters' accounts and invites; only
superusers edit staff accounts, staff status, groups and permissions.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from accounts.forms import InviteForm, UserCreationForm, UserEditForm
from accounts.invites import invite_url, send_invite
from accounts.models import Invite, User


@admin.action(description="Send a set-password e-mail", permissions=["view"])
def send_set_password_email(modeladmin, request, queryset):
    """For accounts a lead created: allauth's password-reset mail lets the owner choose one."""
    from allauth.account.forms import ResetPasswordForm

    sent = 0
    for user in queryset.filter(is_active=True):
        form = ResetPasswordForm(data={"email": user.email})
        if form.is_valid():
            form.save(request)
            sent += 1
    skipped = queryset.count() - sent
    note = f" ({skipped} inactive account(s) skipped)" if skipped else ""
    modeladmin.message_user(request, f"Sent {sent} set-password e-mail(s){note}.", messages.SUCCESS)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name")
    actions = [send_set_password_email]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "description": "Leave password-based authentication off to let the person "
                "choose a password: then use the action “Send a set-password e-mail”.",
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def has_change_permission(self, request, obj=None):
        # Leads manage raters' accounts; staff accounts (leads, superusers) only a superuser
        # edits, or a lead could change another admin's e-mail and take the account over.
        if obj is not None and obj.is_staff and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ("last_login", "date_joined")
        # Only superusers hand out staff status or permissions.
        return (
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
            "last_login",
            "date_joined",
        )


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    form = InviteForm
    list_display = ("email", "project_names", "invited_by", "created_at", "expires_at", "state")
    list_select_related = ("invited_by", "accepted_by")
    list_filter = ("created_at",)
    search_fields = ("email",)
    filter_horizontal = ("projects",)

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("projects")
        if request.user.is_superuser:
            return qs
        from comparisons.models import Project

        visible = Project.objects.visible_to(request.user).values("pk")
        return qs.filter(
            Q(invited_by=request.user) | Q(pk__in=Invite.objects.filter(projects__in=visible))
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("email", "projects", "days")
        return ("email", "projects", "invited_by", "created_at", "expires_at", "accepted_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # An issued invite is a record: its link was already e-mailed.
        return ("email", "projects", "invited_by", "created_at", "expires_at", "accepted_at")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "projects":
            from comparisons.models import Project

            kwargs["queryset"] = Project.objects.visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        invite, token = Invite.issue(
            email=obj.email, invited_by=request.user, days=form.cleaned_data["days"]
        )
        # The admin goes on to save the projects onto `obj` (form.instance): make it that row.
        obj.pk, obj.token_hash = invite.pk, invite.token_hash
        obj.invited_by, obj.created_at, obj.expires_at = (
            invite.invited_by,
            invite.created_at,
            invite.expires_at,
        )
        obj._raw_token = token

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        invite = form.instance
        token = getattr(invite, "_raw_token", None)
        if change or token is None:
            return
        # E-mail only once the invite (with its projects) is committed: a rolled-back save
        # must not leave a link in someone's inbox that leads nowhere.
        transaction.on_commit(lambda: send_invite(invite=invite, token=token, request=request))
        self.message_user(
            request,
            format_html(
                "Invitation e-mailed to {}. The link (shown only now, it works once): "
                "<code>{}</code>",
                invite.email,
                invite_url(token=token, request=request),
            ),
            messages.SUCCESS,
        )

    @admin.display(description="Projects")
    def project_names(self, obj: Invite) -> str:
        return ", ".join(p.name for p in obj.projects.all()) or "—"

    @admin.display(description="State")
    def state(self, obj: Invite) -> str:
        if obj.accepted_at:
            return f"accepted {obj.accepted_at:%Y-%m-%d}"
        if obj.expires_at <= timezone.now():
            return "expired"
        return "pending"
