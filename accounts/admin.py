"""Accounts in the admin: e-mail based users and invitations.

A lead (the "Project leads" group) sees the people of the projects they lead and no one else
(`User.objects.visible_to`): the user list, its change and history pages, the project's raters
and leads autocompletes, and every action. Of those, a lead acts on raters only (staff accounts
are a superuser's), and only on their names and active flag: the address and the password
are a superuser's to change, since whoever controls either can sign in as the rater, in every
project the rater belongs to. A lead adds a new account into one of their projects; an existing
account joins a lead's project through an invite that its owner accepts signed in.
"""

from __future__ import annotations

from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from accounts.forms import InviteForm, LeadUserCreationForm, UserCreationForm, UserEditForm
from accounts.invites import invite_url, send_invite
from accounts.models import Invite, User
from comparisons.admin_cells import when_column
from comparisons.models import Project

# allauth's rows must mirror User.email (one address per account, changed in the user admin
# only, see User.drop_stale_email_addresses): editing them by hand would break that.
admin.site.unregister(EmailAddress)


@admin.action(description="Send a set-password e-mail", permissions=["view"])
def send_set_password_email(modeladmin, request, queryset):
    """For accounts a lead created: allauth's password-reset mail lets the owner choose one."""
    users = User.objects.manageable_by(request.user).filter(
        pk__in=queryset.values("pk"), is_active=True
    )
    sent = 0
    for user in users:
        form = ResetPasswordForm(data={"email": user.email})
        if form.is_valid():
            form.save(request)
            sent += 1
    skipped = queryset.count() - sent
    note = f" ({skipped} inactive or staff account(s) skipped)" if skipped else ""
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
                "fields": ("email", "usable_password", "password1", "password2", "projects"),
            },
        ),
    )
    lead_add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "description": "The new account joins the projects you choose. Its owner "
                "chooses a password: then use the action “Send a set-password e-mail”. To add "
                "someone who already has an account, send them an invite instead.",
                "fields": ("email", "projects"),
            },
        ),
    )

    def get_queryset(self, request):
        # Also the queryset of the project admin's raters and leads autocompletes.
        return super().get_queryset(request).visible_to(request.user)

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        if obj is None:
            return self.lead_add_fieldsets
        # Without the password field, whose link leads to the superusers' password form.
        return ((None, {"fields": ("email",)}), *self.fieldsets[1:])

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and not request.user.is_superuser:
            kwargs["form"] = LeadUserCreationForm
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            choices = {
                "project_choices": Project.objects.visible_to(request.user),
                "projects_required": not request.user.is_superuser,
            }
            form = type(form.__name__, (form,), choices)
        return form

    def has_change_permission(self, request, obj=None):
        if obj is not None and not (
            User.objects.manageable_by(request.user).filter(pk=obj.pk).exists()
        ):
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ("last_login", "date_joined")
        # Only superusers hand out staff status or permissions, or change an address.
        readonly = ("is_staff", "is_superuser", "groups", "user_permissions")
        readonly += ("last_login", "date_joined")
        return readonly if obj is None else ("email", *readonly)

    def user_change_password(self, request, id, form_url=""):
        # A lead who knew a rater's password could sign in and rate as them; a lead sends a
        # set-password e-mail instead, which only the owner of the address can use.
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "email" in form.changed_data:
            obj.drop_stale_email_addresses()


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    form = InviteForm
    list_display = (
        "email",
        "project_names",
        "invited_by",
        "created_at_short",
        "expires_at_short",
        "state",
    )
    list_select_related = ("invited_by", "accepted_by")
    list_filter = ("created_at",)
    search_fields = ("email",)
    filter_horizontal = ("projects",)
    created_at_short = when_column("created_at", "Created")
    expires_at_short = when_column("expires_at", "Expires")

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("projects")
        if request.user.is_superuser:
            return qs
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
