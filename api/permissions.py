"""Who may use the API: someone who leads a project (or may create one)."""

from __future__ import annotations

from rest_framework import permissions

from comparisons.models import Project


def leads_something(user) -> bool:
    """A superuser, a lead of at least one project, or a lead who may create one."""
    if not user.is_authenticated:
        return False
    return Project.objects.visible_to(user).exists() or (
        user.is_staff and user.has_perm("comparisons.add_project")
    )


class IsLead(permissions.BasePermission):
    message = "Only project leads may use the API: this account leads no project."

    def has_permission(self, request, view) -> bool:
        return leads_something(request.user)
