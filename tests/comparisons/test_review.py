"""comparisons.review: the queue's rules on planted judgments, adjudications, reviewer leases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from comparisons import review
from comparisons.models import (
    Adjudication,
    Comparison,
    Judgment,
    Project,
    ReviewLease,
    ReviewLeaseStatus,
)
from tests.comparisons._review_helpers import plant
from tests.factories import LeadFactory, ProjectFactory, UserFactory


def queued(project) -> set[str]:
    return set(review.review_queue(project).values_list("external_id", flat=True))


@pytest.fixture
def quiet(project):
    """The project with every rule off; each test turns on the one it checks."""
    Project.objects.filter(pk=project.pk).update(
        review_splits=False, review_flagged=False, review_gold_missed=None
    )
    project.refresh_from_db()
    return project


# --- complete() --------------------------------------------------------------------------


def test_complete_means_judged_up_to_the_overlap(project):
    done = plant(project, "aab", external_id="done")
    plant(project, "ab", external_id="half")
    assert list(Comparison.objects.complete()) == [done]


# --- the queue's rules -------------------------------------------------------------------


def test_a_split_with_no_majority_needs_review(quiet):
    Project.objects.filter(pk=quiet.pk).update(review_splits=True, overlap=4)
    quiet.refresh_from_db()
    plant(quiet, ["a", "b", "a", "b"], external_id="split")
    plant(quiet, ["a", "b", "tie", "both_bad"], external_id="four-ways")
    plant(quiet, ["a", "a", "a", "b"], external_id="majority")
    plant(quiet, ["a", "b"], external_id="split-but-incomplete")
    assert queued(quiet) == {"split", "four-ways"}


def test_agreement_below_the_threshold_needs_review(quiet):
    Project.objects.filter(pk=quiet.pk).update(review_min_agreement=0.7)
    quiet.refresh_from_db()
    plant(quiet, "aab", external_id="two-thirds")  # 0.667 < 0.7
    plant(quiet, "aaa", external_id="unanimous")
    plant(quiet, "ab", external_id="incomplete")
    assert queued(quiet) == {"two-thirds"}
    Project.objects.filter(pk=quiet.pk).update(review_min_agreement=0.6)
    quiet.refresh_from_db()
    assert queued(quiet) == set()


def test_a_flag_needs_review_even_before_the_comparison_is_complete(quiet):
    Project.objects.filter(pk=quiet.pk).update(review_flagged=True)
    quiet.refresh_from_db()
    plant(quiet, "a", flags={0: ["unsafe"]}, external_id="unsafe-early")
    plant(quiet, "aaa", flags={2: ["cannot_judge"]}, external_id="cannot-judge")
    plant(quiet, "aaa", external_id="clean")
    assert queued(quiet) == {"unsafe-early", "cannot-judge"}


def test_gold_missed_by_n_raters_needs_review(quiet):
    Project.objects.filter(pk=quiet.pk).update(review_gold_missed=2)
    quiet.refresh_from_db()
    plant(quiet, "bba", gold="a", external_id="missed-twice")
    plant(quiet, "bab", gold="b", external_id="missed-once")
    plant(quiet, "ab", gold="a", external_id="missed-once-so-far")
    # Gold is never complete (every rater may get it): two misses are enough however many came.
    plant(quiet, "bb", gold="a", external_id="missed-twice-early")
    assert queued(quiet) == {"missed-twice", "missed-twice-early"}


def test_hand_sent_comparisons_need_review_complete_or_not(quiet):
    sent = plant(quiet, "a", external_id="sent")
    plant(quiet, "a", external_id="not-sent")
    assert review.send_to_review(Comparison.objects.filter(pk=sent.pk)) == 1
    assert queued(quiet) == {"sent"}


def test_each_rule_is_off_when_its_setting_is(quiet):
    plant(quiet, ["a", "b", "tie"], external_id="split")
    plant(quiet, "aaa", flags={0: ["unsafe"]}, external_id="flagged")
    plant(quiet, "bbb", gold="a", external_id="gold")
    assert queued(quiet) == set()


def test_an_adjudicated_comparison_leaves_the_queue_until_sent_again(project, lead):
    split = plant(project, ["a", "b", "tie"], external_id="split")
    assert queued(project) == {"split"}
    review.adjudicate(split, reviewer=lead, choice="a")
    assert queued(project) == set()
    review.send_to_review(Comparison.objects.filter(pk=split.pk))
    assert queued(project) == {"split"}
    review.adjudicate(split, reviewer=lead, choice="b")
    assert queued(project) == set()


def test_late_judgments_do_not_vote(quiet):
    Project.objects.filter(pk=quiet.pk).update(review_splits=True)
    quiet.refresh_from_db()
    c = plant(quiet, ["a", "a", "b", "b"], external_id="late-split")
    late = Judgment.objects.filter(comparison=c, choice="b").first()
    Judgment.objects.filter(pk=late.pk).update(counted=False, is_late=True)
    # 2 a against 1 b counted: a majority.
    assert queued(quiet) == set()


@pytest.mark.parametrize(
    "splits, threshold", [(True, None), (False, 0.7), (False, 0.75), (True, 0.5), (False, 1.0)]
)
def test_the_vote_rules_agree_with_the_exports_verdicts(quiet, splits, threshold):
    """The queue counts votes in the database; the exports' aggregate() is the definition."""
    from itertools import combinations_with_replacement

    from comparisons.exports.verdicts import aggregate

    Project.objects.filter(pk=quiet.pk).update(review_splits=splits, review_min_agreement=threshold)
    quiet.refresh_from_db()
    choices = ["a", "b", "tie", "both_bad"]
    raters = [UserFactory() for _ in range(4)]
    expected = set()
    for size in (3, 4):
        for i, votes in enumerate(combinations_with_replacement(choices, size)):
            c = plant(quiet, votes, raters=raters, external_id=f"v{size}-{i}")
            cast = [(v, None) for v in votes]
            _, reason = aggregate(c.pk, cast, "majority")
            share = max(v.agreement for v in aggregate(c.pk, cast, "all")[0])
            if (splits and reason == "no_majority") or (
                threshold is not None and share < threshold - 1e-9
            ):
                expected.add(c.external_id)
    assert expected  # every parametrization has something to find
    assert queued(quiet) == expected


# --- adjudicate --------------------------------------------------------------------------


def test_adjudicate_records_who_when_what_and_the_majority(project, lead):
    c = plant(project, "aab")
    before = timezone.now()
    adj = review.adjudicate(c, reviewer=lead, choice="b", note="  B cites sources.  ")
    assert (adj.reviewer, adj.choice, adj.note, adj.majority_choice) == (
        lead,
        "b",
        "B cites sources.",
        "a",
    )
    assert adj.created_at >= before and adj.overturned


def test_adjudication_never_touches_judgments(project, lead):
    c = plant(project, ["a", "b", "tie"], flags={1: ["unsafe"]})
    fields = [f.attname for f in Judgment._meta.concrete_fields]
    before = list(Judgment.objects.order_by("id").values_list(*fields))
    review.adjudicate(c, reviewer=lead, choice="exclude", note="bad prompt")
    review.adjudicate(c, reviewer=lead, choice="a")
    assert list(Judgment.objects.order_by("id").values_list(*fields)) == before


def test_a_later_adjudication_supersedes_and_both_are_kept(project, lead):
    c = plant(project, ["a", "b", "tie"])
    first = review.adjudicate(c, reviewer=lead, choice="a")
    second = review.adjudicate(c, reviewer=lead, choice="exclude")
    assert Adjudication.objects.filter(comparison=c).count() == 2
    assert list(Adjudication.objects.latest_per_comparison()) == [second]
    assert first.pk != second.pk


def test_adjudicate_refuses_a_choice_outside_the_scheme(project, lead):
    Project.objects.filter(pk=project.pk).update(allow_tie=False)
    c = plant(project, "aab")
    c.project.refresh_from_db()
    with pytest.raises(ValidationError) as err:
        review.adjudicate(c, reviewer=lead, choice="tie")
    assert "choice" in err.value.message_dict
    with pytest.raises(ValidationError):
        review.adjudicate(c, reviewer=lead, choice="a", note="x" * 20_000)
    assert not Adjudication.objects.exists()


def test_only_reviewers_adjudicate(project, alice, lead):
    c = plant(project, "aab")
    with pytest.raises(PermissionDenied):
        review.adjudicate(c, reviewer=alice, choice="a")  # a rater of the project
    other_lead = LeadFactory()
    ProjectFactory(slug="other").leads.add(other_lead)
    with pytest.raises(PermissionDenied):
        review.adjudicate(c, reviewer=other_lead, choice="a")
    project.reviewers.add(alice)
    assert review.adjudicate(c, reviewer=alice, choice="a").reviewer == alice
    assert not Adjudication.objects.exclude(reviewer=alice).exists()


def test_reviewable_by(project, alice, bob, lead):
    project.reviewers.add(bob)
    superuser = UserFactory(is_superuser=True, is_staff=True)
    ProjectFactory(slug="other")
    assert list(Project.objects.reviewable_by(bob)) == [project]
    assert list(Project.objects.reviewable_by(lead)) == [project]
    assert list(Project.objects.reviewable_by(alice)) == []
    assert Project.objects.reviewable_by(superuser).count() == 2
    # A lead who lost staff status no longer reviews by leading.
    lead.is_staff = False
    assert list(Project.objects.reviewable_by(lead)) == []


# --- reviewer leases ---------------------------------------------------------------------


def test_two_reviewers_get_different_items_and_keep_them(project, lead, bob):
    project.reviewers.add(bob)
    first = plant(project, ["a", "b", "tie"], external_id="first")
    second = plant(project, ["a", "b", "both_bad"], external_id="second")
    mine = review.next_review(lead, project)
    theirs = review.next_review(bob, project)
    assert {mine.comparison, theirs.comparison} == {first, second}
    assert review.next_review(lead, project) == mine  # the same lease until it is done
    assert review.next_review(UserFactory(), project) is None  # not a reviewer


def test_a_reviewer_gets_nothing_held_by_another(project, lead, bob):
    project.reviewers.add(bob)
    plant(project, ["a", "b", "tie"])
    assert review.next_review(lead, project) is not None
    assert review.next_review(bob, project) is None


def test_an_expired_review_lease_goes_to_the_next_reviewer(project, lead, bob):
    project.reviewers.add(bob)
    c = plant(project, ["a", "b", "tie"])
    lease = review.next_review(lead, project)
    ReviewLease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = review.next_review(bob, project)
    assert taken.comparison == c
    lease.refresh_from_db()
    assert lease.status == ReviewLeaseStatus.EXPIRED
    # The first reviewer's late submit is refused: it is someone else's now.
    with pytest.raises(ValidationError):
        review.adjudicate_lease(lease, choice="a")
    assert not Adjudication.objects.exists()


def test_adjudicating_a_lease_is_idempotent_and_moves_on(project, lead):
    plant(project, ["a", "b", "tie"], external_id="one")
    plant(project, ["a", "b", "both_bad"], external_id="two")
    lease = review.next_review(lead, project)
    assert review.adjudicate_lease(lease, choice="a") is not None
    assert review.adjudicate_lease(lease, choice="b") is None  # double submit
    assert Adjudication.objects.count() == 1
    following = review.next_review(lead, project)
    assert following.comparison != lease.comparison


def test_a_skipped_item_is_not_offered_to_that_reviewer_again(project, lead, bob):
    project.reviewers.add(bob)
    c = plant(project, ["a", "b", "tie"])
    review.skip_review(review.next_review(lead, project))
    assert review.next_review(lead, project) is None
    assert review.next_review(bob, project).comparison == c


def test_the_unique_constraints_allow_one_live_lease_per_comparison(project, lead, bob):
    from django.db import IntegrityError, transaction

    c = plant(project, ["a", "b", "tie"])
    now = timezone.now()
    ReviewLease.objects.create(
        project=project, comparison=c, reviewer=lead, leased_at=now, expires_at=now
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewLease.objects.create(
            project=project, comparison=c, reviewer=bob, leased_at=now, expires_at=now
        )


def test_review_summary_counts_backlog_verdicts_and_overturns(project, lead, bob):
    project.reviewers.add(bob)
    a = plant(project, "aab")
    b = plant(project, "bba")
    plant(project, ["a", "b", "tie"])  # still in the backlog
    review.adjudicate(a, reviewer=lead, choice="b")  # overturns a
    review.adjudicate(b, reviewer=bob, choice="b")  # confirms b
    review.adjudicate(b, reviewer=bob, choice="exclude")
    summary = review.review_summary(project)
    assert summary["backlog"] == 1
    assert summary["verdicts"] == 3
    # The exclusion is neither an overturn nor a confirmation.
    assert summary["overturned"] == 1 and summary["overturn_rate"] == pytest.approx(1 / 2)
    by = {row["reviewer"]: row for row in summary["per_reviewer"]}
    assert by[bob.email]["verdicts"] == 2 and by[bob.email]["excluded"] == 1
    assert by[lead.email]["overturn_rate"] == 1.0


def test_the_dashboard_shows_the_review_figures_of_the_snapshot(client, project, lead, bob):
    from comparisons.metrics import compute_snapshot

    a = plant(project, "aab")
    plant(project, ["a", "b", "tie"])
    review.adjudicate(a, reviewer=lead, choice="b")
    compute_snapshot(project)
    client.force_login(lead)
    html = client.get(f"/dashboard/{project.slug}/").content.decode()
    assert "<strong>1</strong> comparison waiting for review" in html
    assert "overturned the raters' majority: <strong>100%</strong>" in html
    assert '<td class="who">lead@example.com</td><td class="num">1</td>' in html
