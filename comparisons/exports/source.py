"""What an export reads from the database: the selected judgments, streamed, and the content.

Judgments are read in (comparison id, judgment id) order in chunks, so memory stays flat in the
project's size; prompts and responses are fetched per batch of comparisons.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, TextField
from django.db.models.functions import Cast

from comparisons.exports.options import ExportOptions, below, named_raters
from comparisons.exports.rows import JudgmentRow, messages
from comparisons.exports.verdicts import Vote
from comparisons.metrics import rater_scores
from comparisons.models import Adjudication, Comparison, Judgment, Project, Response

CHUNK_SIZE = 5000  # judgments per database round trip


@dataclass
class Selection:
    queryset: QuerySet[Judgment]
    total: int  # judgments the queryset will yield
    raters_excluded: dict[str, int]
    judgments_excluded: dict[str, int] = field(default_factory=dict)


def pseudonym(project_id: int, user_id: int) -> str:
    """A rater's export id: stable within a project, unlinkable across projects without the key."""
    message = f"raterhub-export:{project_id}:{user_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:16]


PSEUDONYM_DEFINITION = (
    "HMAC-SHA256(SECRET_KEY, 'raterhub-export:<project id>:<user id>'), 16 hex chars"
)


def _excluded_rater_ids(project: Project, opts: ExportOptions) -> tuple[set[int], dict[str, int]]:
    ids: set[int] = set()
    why: dict[str, int] = {}
    if opts.exclude_raters:
        ids.update(named_raters(opts.exclude_raters).values())
        why["named"] = len(ids)
    if opts.min_gold_accuracy is not None or opts.min_rater_quality is not None:
        below_gold = below_quality = 0
        for rater_id, score in rater_scores(project).items():
            if rater_id in ids:
                continue
            if below(score.get("gold_accuracy"), opts.min_gold_accuracy):
                ids.add(rater_id)
                below_gold += 1
            elif below(score.get("quality"), opts.min_rater_quality):
                ids.add(rater_id)
                below_quality += 1
        if opts.min_gold_accuracy is not None:
            why["gold_accuracy"] = below_gold
        if opts.min_rater_quality is not None:
            why["quality"] = below_quality
    return ids, why


def select(project: Project, opts: ExportOptions) -> Selection:
    """The judgments the options keep, and how many were left out for each reason."""
    rater_ids, raters_excluded = _excluded_rater_ids(project, opts)
    in_range = Q()
    if opts.since:
        in_range &= Q(created_at__gte=opts.since)
    if opts.until:
        in_range &= Q(created_at__lt=opts.until)
    nothing = Q(pk__in=[])
    gold = Q(is_gold=True) if not opts.include_gold else nothing
    late = Q(is_late=True) if not opts.include_late else nothing
    # Complete is the queue's one definition (Comparison.completed_at); gold is never
    # "complete" and is governed by include_gold alone.
    incomplete = (
        Q(is_gold=False, comparison__completed_at__isnull=True)
        if not opts.include_incomplete
        else nothing
    )
    rater = Q(rater_id__in=rater_ids)

    project_judgments = Judgment.objects.current().filter(project=project)
    # One pass counts why judgments were left out, each counted once, in this order, and so
    # also how many are left (a second COUNT would scan them all again).
    excluded = project_judgments.aggregate(
        all=Count("id"),
        date=Count("id", filter=~in_range) if in_range else Count("id", filter=nothing),
        gold=Count("id", filter=in_range & gold),
        late=Count("id", filter=in_range & ~gold & late),
        incomplete=Count("id", filter=in_range & ~gold & ~late & incomplete),
        rater=Count("id", filter=in_range & ~gold & ~late & ~incomplete & rater),
    )
    qs = (
        project_judgments.filter(in_range)
        .exclude(gold)
        .exclude(late)
        .exclude(incomplete)
        .exclude(rater)
    )
    total = excluded.pop("all")
    return Selection(
        queryset=qs.order_by("comparison_id", "id"),
        total=total - sum(excluded.values()),
        raters_excluded=raters_excluded,
        judgments_excluded={k: v for k, v in excluded.items() if v},
    )


def rulings(project: Project) -> dict[int, str]:
    """{comparison id: the verdict in force} of every adjudicated comparison of the project."""
    return dict(
        Adjudication.objects.filter(project=project)
        .latest_per_comparison()
        .order_by()
        .values_list("comparison_id", "choice")
    )


def votes_by_comparison(qs: QuerySet[Judgment]) -> Iterator[tuple[int, list[Vote]]]:
    """(comparison id, [(choice, strength)]) for judgments ordered by comparison id."""
    values = qs.values_list("comparison_id", "choice", "strength").iterator(chunk_size=CHUNK_SIZE)
    current, votes = None, []
    for cid, choice, strength in values:
        if cid != current:
            if votes:
                yield current, votes
            current, votes = cid, []
        votes.append((choice, strength))
    if votes:
        yield current, votes


def contents(ids: list[int]) -> dict[int, dict]:
    """{comparison id: {"external_id", "prompt" (messages), "responses" [(model, text)]}}."""
    found: dict[int, dict] = {}
    for cid, external_id, prompt in Comparison.objects.filter(id__in=ids).values_list(
        "id", "external_id", "prompt"
    ):
        found[cid] = {"external_id": external_id, "prompt": messages(prompt), "responses": []}
    responses = (
        Response.objects.filter(comparison_id__in=ids, position__in=(0, 1))
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "model_name", "content")
    )
    for cid, model, text in responses:
        found[cid]["responses"].append((model, text))
    return found


def criteria_names(project: Project, qs: QuerySet[Judgment]) -> list[str]:
    """Every criterion name the selected judgments answer: the project's scheme in its order,
    then any other name (a scheme edited after judging) sorted, so none is dropped."""
    names = list(project.criteria or [])
    seen = set(names)
    extra: set[str] = set()
    # Distinct answers are few (choices ** criteria), whatever the number of judgments.
    for answer in qs.order_by().values_list("criteria", flat=True).distinct():
        if isinstance(answer, dict):
            extra.update(key for key in answer if key not in seen)
    return names + sorted(extra)


def _models(comparison_ids: list[int]) -> dict[int, tuple[str, str]]:
    """{comparison id: (model of response a, model of response b)}."""
    found: dict[int, list[str]] = {}
    responses = (
        Response.objects.filter(comparison_id__in=comparison_ids, position__in=(0, 1))
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "model_name")
    )
    for cid, model in responses:
        found.setdefault(cid, []).append(model)
    return {cid: (*models, "", "")[:2] for cid, models in found.items()}


def _compact_json(text: str | None, empty: str) -> str:
    if not text or text == empty:
        return empty
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def judgment_rows(
    project: Project, qs: QuerySet[Judgment], verdicts: dict[int, str]
) -> Iterator[JudgmentRow]:
    """Every selected judgment as a raw row, the rater as their export pseudonym, with its
    comparison's verdict in force from `verdicts` (rulings).

    Criteria and flags are read as JSON text (parsing a million small JSON values in Python
    would double the export's time) and only re-serialised compactly when not empty.
    """
    text = TextField()
    values = (
        qs.annotate(criteria_text=Cast("criteria", text), flags_text=Cast("flags", text))
        .values_list(
            "id",
            "comparison_id",
            "comparison__external_id",
            "rater_id",
            "choice",
            "swapped",
            "strength",
            "criteria_text",
            "rationale",
            "flags_text",
            "duration_ms",
            "is_gold",
            "comparison__gold_choice",
            "is_late",
            "counted",
            F("assignment__leased_at"),
            "created_at",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    names: dict[int, str] = {}
    while chunk := list(islice(values, CHUNK_SIZE)):
        # The models of a chunk's comparisons in one query, not a join per judgment.
        models = _models(sorted({row[1] for row in chunk}))
        for row in chunk:
            yield _judgment_row(
                project, row, names, models.get(row[1], ("", "")), verdicts.get(row[1])
            )


def _judgment_row(
    project: Project, row: tuple, names: dict[int, str], models, verdict: str | None
) -> JudgmentRow:
    rater_id = row[3]
    name = names.get(rater_id)
    if name is None:
        name = names[rater_id] = pseudonym(project.pk, rater_id)
    return JudgmentRow(
        row[0],
        row[1],
        row[2],
        *models,
        name,
        row[4],
        "ba" if row[5] else "ab",
        row[6],
        _compact_json(row[7], "{}"),
        row[8],
        _compact_json(row[9], "[]"),
        *row[10:],
        verdict,
    )


# --- ranking projects ------------------------------------------------------------------------


def rankings_by_comparison(qs: QuerySet[Judgment]) -> Iterator[tuple[int, list[list[list[str]]]]]:
    """(comparison id, [tiers of each judgment]) for judgments ordered by comparison id."""
    values = qs.values_list("comparison_id", "ranking").iterator(chunk_size=CHUNK_SIZE)
    current, rankings = None, []
    for cid, tiers in values:
        if cid != current:
            if rankings:
                yield current, rankings
            current, rankings = cid, []
        if tiers:  # a judgment made before the project ranked has none
            rankings.append(tiers)
    if rankings:
        yield current, rankings


def ranked_contents(ids: list[int]) -> dict[int, dict]:
    """`contents`, with every response of each comparison (in key order a, b, c, …)."""
    found: dict[int, dict] = {}
    for cid, external_id, prompt, gold in Comparison.objects.filter(id__in=ids).values_list(
        "id", "external_id", "prompt", "gold_ranking"
    ):
        found[cid] = {
            "external_id": external_id,
            "prompt": messages(prompt),
            "responses": [],
            "gold_ranking": gold,
        }
    responses = (
        Response.objects.filter(comparison_id__in=ids)
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "model_name", "content")
    )
    for cid, model, text in responses:
        found[cid]["responses"].append((model, text))
    return found


def ranking_rows(qs: QuerySet[Judgment]) -> Iterator[tuple]:
    """The raw fields of each selected ranking judgment, in (comparison, judgment) order:
    (id, comparison id, rater id, ranking, shown order, rationale, flags, duration_ms, is_gold,
    is_late, counted, shown at, created at)."""
    return qs.values_list(
        "id",
        "comparison_id",
        "rater_id",
        "ranking",
        "assignment__shown_order",
        "rationale",
        "flags",
        "duration_ms",
        "is_gold",
        "is_late",
        "counted",
        "assignment__leased_at",
        "created_at",
    ).iterator(chunk_size=CHUNK_SIZE)
