"""Inter-rater agreement: Krippendorff's alpha and percent agreement (pure, over arrays)."""

from __future__ import annotations

import math
from typing import Any

import krippendorff
import numpy as np

from comparisons.metrics.load import TIE, A, B, Judgments
from comparisons.metrics.stats import EPS, value_counts

ORDINAL_DOMAIN = list(range(-3, 4))

ORDINAL_LABELS = ["A much", "A clearly", "A slightly", "tie", "B slightly", "B clearly", "B much"]

AGREEMENT_BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def alpha(value_counts: np.ndarray, level: str, domain=None) -> float | None:
    """krippendorff.alpha over units with at least two values; None when undefined."""
    pairable = value_counts[value_counts.sum(axis=1) >= 2]
    if not len(pairable) or (pairable.sum(axis=0) > 0).sum() < 2:
        # No unit judged twice, or every judgment the same value: alpha is 0/0.
        return None
    value = krippendorff.alpha(
        value_counts=pairable, value_domain=domain, level_of_measurement=level
    )
    return None if math.isnan(value) else float(value)


def pairwise_agreement(value_counts: np.ndarray) -> np.ndarray:
    """Per unit (with at least two judgments): the share of agreeing rater pairs."""
    m = value_counts.sum(axis=1)
    keep = m >= 2
    vc, m = value_counts[keep], m[keep]
    return (vc * (vc - 1)).sum(axis=1) / (m * (m - 1))


def agreement_block(value_counts: np.ndarray, level: str, domain=None) -> dict:
    per_unit = pairwise_agreement(value_counts)
    hist, _ = np.histogram(per_unit, bins=AGREEMENT_BINS)
    return {
        "alpha": alpha(value_counts, level, domain),
        "percent": float(per_unit.mean()) if len(per_unit) else None,
        "units": len(per_unit),
        "unanimous": int((per_unit >= 1 - EPS).sum()),
        "distribution": {
            "bins": AGREEMENT_BINS,
            "counts": hist.tolist(),
        },
    }


def agreement_of(j: Judgments, *, use_strength: bool) -> dict:
    """Agreement over the project-level judgments (see `comparisons.metrics.agreement`)."""
    mask = j.project_mask
    n_units = len(j.comparison_ids)
    unit = j.unit[mask]
    result: dict[str, Any] = {
        "judgments": int(mask.sum()),
        "choice": agreement_block(
            value_counts(unit, j.choice[mask].astype(np.int64), n_units, 4), "nominal"
        ),
        "strength": None,
        "criteria": {},
    }
    if use_strength:
        signed = signed_strength(j.choice[mask], j.strength[mask])
        on_scale = signed != -99
        counts = value_counts(unit[on_scale], signed[on_scale] + 3, n_units, 7)
        block = agreement_block(counts, "ordinal", ORDINAL_DOMAIN)
        block["scale"] = ORDINAL_LABELS
        result["strength"] = block
    for name, codes in j.criteria.items():
        values = codes[mask].astype(np.int64)
        ok = values >= 0
        counts = value_counts(unit[ok], values[ok], n_units, 4)
        block = agreement_block(counts, "nominal")
        block["judgments"] = int(ok.sum())
        result["criteria"][name] = block
    return result


def signed_strength(choice: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The ordinal scale -3..+3 (see the module docstring); -99 where not on the scale."""
    signed = np.full(len(choice), -99, np.int64)
    signed[choice == TIE] = 0
    has = strength > 0
    signed[(choice == A) & has] = -strength[(choice == A) & has]
    signed[(choice == B) & has] = strength[(choice == B) & has]
    return signed
