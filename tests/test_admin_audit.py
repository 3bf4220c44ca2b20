"""Audit: every model in the admin is out of reach for a lead of another project.

Data-driven over `admin.site._registry`, so a model registered later is covered without
touching this file: until it has an entry in AUDIT_OBJECTS (a real row of the first lead's
project), the test fails and says so.

For each model, Olga (a lead of another project) gets 403, or a 404-like answer, or a list
without the row, on its changelist, change, history and delete pages; and each of its actions,
POSTed with the row selected (with whatever confirmation the action asks for), changes nothing.
A superuser opening the same change page gets 200, and so does the row's own lead wherever
leads may look: the URLs are right, and only scoping keeps Olga out.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core import mail
from django.db.models import Model
from django.urls import reverse

from accounts.models import LEADS_GROUP, Invite
from api.models import Webhook, WebhookDelivery
from api.tokens import issue_token
from comparisons.models import Adjudication, AssignmentStatus, ExportJob, ImportJob
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    JudgmentFactory,
    LeadFactory,
    ProjectFactory,
    UserFactory,
)

# The fields any action's confirmation step asks for (delete_selected's "post", the export
# form's "apply" with a valid format): sent with every action so that an action that reached
# the row would really act, not stop at a confirmation page.
CONFIRMATIONS = {"post": "yes", "apply": "1", "format": "trl", "aggregation": "majority"}


@pytest.fixture
def world(project, lead, alice, bob):
    """Rows of `project` (led by `lead`): one of each kind the admin shows."""
    comparison = ComparisonFactory(project=project)
    assignment = AssignmentFactory(comparison=comparison, rater=alice)
    judgment = JudgmentFactory(assignment__comparison=comparison, assignment__rater=bob)
    invite, _ = Invite.issue(email="newbie@example.com", invited_by=lead)
    invite.projects.add(project)
    webhook = Webhook.objects.create(project=project, url="https://example.org/hook")
    delivery = WebhookDelivery.objects.create(webhook=webhook, event="export.failed", key="k")
    return {
        "webhook": webhook,
        "webhookdelivery": delivery,
        "apitoken": issue_token(user=lead, name="audit")[0],
        "project": project,
        "comparison": comparison,
        "assignment": assignment,
        "judgment": judgment,
        "exportjob": ExportJob.objects.create(project=project, requested_by=lead, format="trl"),
        "importjob": ImportJob.objects.create(project=project, requested_by=lead, total_lines=9),
        "adjudication": Adjudication.objects.create(
            project=project, comparison=comparison, reviewer=lead, choice="a"
        ),
        "invite": invite,
        "user": alice,
        "group": Group.objects.get(name=LEADS_GROUP),
    }


# model label -> the row of the first lead's project to try on it.
AUDIT_OBJECTS: dict[str, Callable[[dict], Model]] = {
    "comparisons.project": lambda w: w["project"],
    "comparisons.comparison": lambda w: w["comparison"],
    "comparisons.assignment": lambda w: w["assignment"],
    "comparisons.judgment": lambda w: w["judgment"],
    "comparisons.exportjob": lambda w: w["exportjob"],
    "comparisons.importjob": lambda w: w["importjob"],
    "comparisons.adjudication": lambda w: w["adjudication"],
    "accounts.invite": lambda w: w["invite"],
    "accounts.user": lambda w: w["user"],
    "auth.group": lambda w: w["group"],
    "api.webhook": lambda w: w["webhook"],
    "api.webhookdelivery": lambda w: w["webhookdelivery"],
    "api.apitoken": lambda w: w["apitoken"],
}

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


@pytest.fixture
def olga(db):
    user = LeadFactory(email="olga@example.com")
    user.groups.add(Group.objects.get(name=LEADS_GROUP))
    ProjectFactory(slug="olgas", name="Olga's project").leads.add(user)
    return user


def _snapshot() -> dict:
    """Every row of every registered model and of its many-to-many tables, the mail, the log."""
    rows = {}
    for model in admin.site._registry:
        rows[model._meta.label] = list(model._default_manager.order_by("pk").values())
        for field in model._meta.many_to_many:
            through = field.remote_field.through
            rows[through._meta.label] = list(through.objects.order_by("pk").values())
    rows["outbox"] = [m.to for m in mail.outbox]
    rows["log"] = LogEntry.objects.count()
    return rows


def _looks_missing(r, missing) -> bool:
    """403, 404, or exactly the admin's answer for a primary key that does not exist."""
    if r.status_code in (403, 404):
        return True
    return (r.status_code, r.get("Location")) == (missing.status_code, missing.get("Location"))


@pytest.mark.parametrize(
    ("model", "model_admin"), REGISTERED, ids=[m._meta.label_lower for m, _ in REGISTERED]
)
def test_a_lead_of_another_project_cannot_reach_it(client, world, lead, olga, model, model_admin):
    label = model._meta.label_lower
    if label not in AUDIT_OBJECTS:
        pytest.fail(f"{label} is in the admin: add a row of the lead's project to AUDIT_OBJECTS")
    obj = AUDIT_OBJECTS[label](world)
    info = (model._meta.app_label, model._meta.model_name)
    changelist = reverse("admin:{}_{}_changelist".format(*info))
    pages = {
        page: reverse(f"admin:{info[0]}_{info[1]}_{page}", args=[obj.pk])
        for page in ("change", "history", "delete")
    }

    # Controls: the URLs and the row are real.
    superuser = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.get(pages["change"]).status_code == 200
    client.force_login(lead)
    if client.get(changelist).status_code == 200:
        assert client.get(pages["change"]).status_code == 200, "its own lead sees it"

    client.force_login(olga)
    before = _snapshot()
    r = client.get(changelist)
    if r.status_code != 403:
        assert r.status_code == 200
        assert obj.pk not in {row.pk for row in r.context["cl"].result_list}
    missing = client.get(reverse(f"admin:{info[0]}_{info[1]}_change", args=[987654321]))
    for page, url in pages.items():
        assert _looks_missing(client.get(url), missing), page
        assert _looks_missing(client.post(url, {"post": "yes"}), missing), page

    for _func, name, _description in model_admin._get_base_actions():
        r = client.post(
            changelist,
            {"action": name, "_selected_action": [obj.pk], "index": "0", **CONFIRMATIONS},
        )
        assert r.status_code in (200, 302, 403), name
        if r.status_code == 200:
            assert str(obj).encode() not in r.content, name
        assert _snapshot() == before, f"action {name} changed something"
    assert _snapshot() == before


def test_the_audit_knows_the_registry():
    # A model that left the admin leaves a stale entry here: drop it.
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert set(AUDIT_OBJECTS) <= registered


def test_the_world_has_a_live_lease_to_release(world):
    # Without an active lease, release_active_leases would change nothing even when allowed.
    assert world["assignment"].status == AssignmentStatus.ACTIVE
