"""Exports of ranking projects: rankings expanded into the pairs reward models train on, and
the `rankings` format (one row per judgment with its full order).

A comparison's rankings are aggregated by comparisons.ranking.aggregate (majority of the raters'
relative order per pair, Copeland for the order); each decided pair becomes one row of the
pairwise formats, carrying `group_id` (the comparison's external id: a trainer batches a
prompt's pairs together, as InstructGPT did) and `chosen_rank` / `rejected_rank` (the two
responses' tiers in the aggregated order, from 1). Pure but for the reads in exports.source.
"""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa

from comparisons import ranking
from comparisons.exports import source
from comparisons.exports.options import ExportError, ExportOptions, below
from comparisons.exports.rows import TRL_SCHEMA, JsonlWriter, ParquetWriter, iso
from comparisons.models import ExportFormat, Project

CONTENT_BATCH = 1000  # comparisons whose prompt and responses are fetched together

TRL_RANKED_SCHEMA = pa.schema(
    [
        *TRL_SCHEMA,
        ("group_id", pa.string()),
        ("chosen_rank", pa.int32()),
        ("rejected_rank", pa.int32()),
    ]
)

DEFINITIONS = {
    "ranking_aggregation": ranking.AGGREGATION_DEFINITION,
    "ranked_agreement": "share of the comparison's rankings that order the pair as the row does",
    "ranked_margin": "(rankings ordering the pair as the row does - rankings ordering it the "
    "other way) / num_judgments; rankings that tie the pair add 0 but count in num_judgments",
    "ranked_majority": "a pair is decided when more rankings put one response above the other "
    "than the reverse; unanimous: every ranking does; all: each ranking's own pairs, one row each",
    "ranked_rows_dropped": "min_agreement counts pairs; every other reason counts comparisons",
}


def check_format(project: Project, fmt: ExportFormat) -> None:
    if fmt == ExportFormat.RANKINGS and not project.is_ranking:
        raise ExportError("the rankings format needs a ranking project (task_type ranking)")


def open_writer(fmt: ExportFormat, fh: BinaryIO):
    """The writer of a ranking project's preference formats (JSONL, or Parquet with the
    pair columns); None for the raw formats, which write as in a pairwise project."""
    if fmt == ExportFormat.TRL_PARQUET:
        return ParquetWriter(fh, TRL_RANKED_SCHEMA)
    if fmt == ExportFormat.RANKINGS or not fmt.is_raw:
        return JsonlWriter(fh)
    return None


def pairs_of(rankings: list, keys: list[str], aggregation: str) -> list[tuple[ranking.Pair, dict]]:
    """(pair, the aggregated rank of each key) for what `aggregation` keeps of one comparison."""
    order, pairs = ranking.aggregate(rankings, keys)
    place = ranking.ranks(order)
    if aggregation == "unanimous":
        pairs = [p for p in pairs if p.votes_for == p.num_judgments]
    elif aggregation == "all":
        by_pair = {(p.chosen, p.rejected): p for p in pairs}
        votes = ranking.pair_votes(rankings, keys)
        n = len(rankings)
        pairs = []
        for tiers in rankings:
            for own in ranking.decided_pairs([tiers], keys):
                key = (own.chosen, own.rejected)
                against = votes[own.rejected, own.chosen]
                pairs.append(by_pair.get(key) or ranking.Pair(*key, votes[key], against, n))
    return [(p, place) for p in pairs]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def pair_rows(fmt: ExportFormat, pair: ranking.Pair, place: dict, content: dict) -> list[dict]:
    """The rows one decided pair becomes in a preference format."""
    index = {key: i for i, key in enumerate(ranking.KEYS)}
    chosen = content["responses"][index[pair.chosen]]
    rejected = content["responses"][index[pair.rejected]]
    group = {
        "group_id": content["external_id"],
        "chosen_rank": place[pair.chosen],
        "rejected_rank": place[pair.rejected],
    }
    prompt = content["prompt"]
    if fmt == ExportFormat.TRL_KTO:
        # As TRL's own unpair_preference_dataset turns a pair into two unpaired rows.
        return [
            {"prompt": prompt, "completion": _assistant(chosen[1]), "label": True, **group},
            {"prompt": prompt, "completion": _assistant(rejected[1]), "label": False, **group},
        ]
    if fmt == ExportFormat.OPENAI_DPO:
        return [
            {
                "input": {"messages": prompt},
                "preferred_output": _assistant(chosen[1]),
                "non_preferred_output": _assistant(rejected[1]),
                **group,
            }
        ]
    return [
        {
            "id": f"{content['external_id']}/{pair.chosen}>{pair.rejected}",
            "prompt": prompt,
            "chosen": _assistant(chosen[1]),
            "rejected": _assistant(rejected[1]),
            "chosen_model": chosen[0],
            "rejected_model": rejected[0],
            "num_judgments": pair.num_judgments,
            "agreement": pair.agreement,
            "margin": pair.margin,
            **group,
        }
    ]


def write_pairs(fmt: ExportFormat, opts: ExportOptions, selection, writer, counts, tick) -> None:
    """A ranking project's preference formats: every decided pair of every comparison."""
    pending: list[tuple[int, list]] = []

    def flush() -> None:
        found = source.ranked_contents(sorted(cid for cid, _ in pending))
        rows: list[dict] = []
        for cid, rankings in pending:
            content = found[cid]
            if not content["prompt"] or content["prompt"][-1]["role"] != "user":
                counts.dropped["prompt_not_ending_in_user"] += 1
                continue
            keys = ranking.keys_for(len(content["responses"]))
            if any(sorted(k for tier in t for k in tier) != keys for t in rankings):
                counts.dropped["ranking_does_not_match_responses"] += 1
                continue
            kept = 0
            for pair, place in pairs_of(rankings, keys, opts.aggregation):
                if below(pair.agreement, opts.min_agreement):
                    counts.dropped["min_agreement"] += 1
                    continue
                rows.extend(pair_rows(fmt, pair, place, content))
                kept += 1
            if not kept:
                counts.dropped["no_decided_pair"] += 1
        writer.write(rows)
        counts.rows += len(rows)
        pending.clear()

    for cid, rankings in source.rankings_by_comparison(selection.queryset):
        counts.comparisons += 1
        counts.judgments += len(rankings)
        tick(len(rankings))
        if opts.min_judgments is not None and len(rankings) < opts.min_judgments:
            counts.dropped["min_judgments"] += 1
            continue
        pending.append((cid, rankings))
        if len(pending) >= CONTENT_BATCH:
            flush()
    flush()


def write_rankings(project: Project, selection, writer, counts, tick) -> None:
    """The `rankings` format: one row per judgment, its full order and the order it was shown."""
    batch: list[tuple] = []

    def flush() -> None:
        found = source.ranked_contents(sorted({row[1] for row in batch}))
        names: dict[int, str] = {}
        rows = []
        for (
            jid,
            cid,
            rater_id,
            tiers,
            shown,
            rationale,
            flags,
            duration_ms,
            is_gold,
            is_late,
            counted,
            shown_at,
            created_at,
        ) in batch:
            content = found[cid]
            models = dict(zip(ranking.KEYS, (m for m, _ in content["responses"]), strict=False))
            if rater_id not in names:
                names[rater_id] = source.pseudonym(project.pk, rater_id)
            rows.append(
                {
                    "judgment_id": jid,
                    "comparison_id": cid,
                    "group_id": content["external_id"],
                    "rater": names[rater_id],
                    "ranking": tiers,
                    "order": ranking.order_string(tiers),
                    "ranked_models": [[models[k] for k in tier] for tier in tiers],
                    "models": models,
                    "display_order": shown,
                    "rationale": rationale,
                    "flags": flags,
                    "duration_ms": duration_ms,
                    "is_gold": is_gold,
                    "gold_ranking": content["gold_ranking"],
                    "is_late": is_late,
                    "counted": counted,
                    "shown_at": iso(shown_at),
                    "created_at": iso(created_at),
                }
            )
        writer.write(rows)
        counts.rows += len(rows)
        batch.clear()

    last_cid = None
    for row in source.ranking_rows(selection.queryset.filter(ranking__isnull=False)):
        batch.append(row)
        counts.judgments += 1
        tick(1)
        if row[1] != last_cid:
            counts.comparisons += 1
            last_cid = row[1]
        if len(batch) >= source.CHUNK_SIZE:
            flush()
    if batch:
        flush()


def manifest_notes(fmt: ExportFormat) -> dict:
    """What a ranking project's manifest adds: the aggregation method and its definitions."""
    notes = {"task_type": "ranking"}
    if not fmt.is_raw:
        notes["aggregation_method"] = ranking.AGGREGATION_METHOD
        notes["definitions"] = DEFINITIONS
    return notes
