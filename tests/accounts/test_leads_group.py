"""The "Project leads" group holds accounts.leads.LEAD_PERMISSIONS after migrate and flush."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.leads import LEAD_PERMISSIONS
from accounts.models import LEADS_GROUP


def _granted() -> set[tuple[str, str]]:
    group = Group.objects.get(name=LEADS_GROUP)
    return set(group.permissions.values_list("content_type__app_label", "codename"))


WANTED = {(app, code) for app, codes in LEAD_PERMISSIONS.items() for code in codes}


def test_the_migrated_group_has_every_lead_permission(db):
    assert _granted() == WANTED


@pytest.mark.django_db(transaction=True)
def test_a_flush_leaves_the_group_whole(db):
    # A flush (what every transactional test ends with) empties the tables the migrations
    # filled; the post_migrate receiver puts the group back, so the next test's lead can act.
    call_command("flush", interactive=False, verbosity=0)
    assert _granted() == WANTED
