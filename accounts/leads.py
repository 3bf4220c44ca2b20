"""The "Project leads" group's permissions: the one current list, kept in step after every
migrate (and every flush, which tests run: it empties the tables the migrations filled).

The migrations that created the group and added to it are history; this list is what a lead
may do now. Scoping (which projects and people) is the admin's and the querysets' business.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from accounts.models import LEADS_GROUP

LEAD_PERMISSIONS = {
    "comparisons": [
        "view_project", "add_project", "change_project",
        "view_comparison", "add_comparison", "change_comparison",
        "view_response", "add_response", "change_response",
        "view_assignment",
        "view_judgment",
        "view_exportjob", "add_exportjob",
        "view_importjob",
        "view_metricssnapshot",
        "view_adjudication",
    ],
    "accounts": [
        "view_invite", "add_invite", "change_invite",
        # Django's user admin needs "change" to add a user at all; accounts.admin.UserAdmin
        # limits leads to non-staff accounts and makes staff/permission fields read-only.
        "view_user", "add_user", "change_user",
    ],
    "api": [
        "view_webhook", "add_webhook", "change_webhook",  # no delete: leads deactivate
        "view_webhookdelivery", "view_webhookattempt",
    ],
}  # fmt: skip


def sync_leads_group(**kwargs) -> None:
    """Create the group if it is missing and give it every permission of LEAD_PERMISSIONS
    that exists yet (a post_migrate receiver: it runs once per migrated app, the apps'
    permissions are created before it in the same signal, so the last run has them all)."""
    wanted = Q()
    for app_label, codenames in LEAD_PERMISSIONS.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    group, _ = Group.objects.get_or_create(name=LEADS_GROUP)
    group.permissions.add(*Permission.objects.filter(wanted))
