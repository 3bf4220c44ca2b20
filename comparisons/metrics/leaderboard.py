"""The model leaderboard: Bradley-Terry on the Elo scale with bootstrap intervals, the
pairwise win-rate matrix, and length bias (pure, over arrays)."""

from __future__ import annotations

import math

import numpy as np

from comparisons.metrics.load import BOTH_BAD, A, B, Judgments
from comparisons.metrics.stats import binom_p, ratio

BT_ALPHA = 0.01

ELO_SCALE = 400 / math.log(10)

ELO_ANCHOR = 1000.0

BOOTSTRAP_ROUNDS = 200

BOOTSTRAP_SEED = 20240601


def bt_objective(theta: np.ndarray, wins: np.ndarray, alpha: float) -> float:
    diff = theta[:, None] - theta[None, :]
    return float((wins * np.logaddexp(0, -diff)).sum() + alpha * (theta**2).sum())


def fit_bradley_terry(
    wins: np.ndarray,
    *,
    alpha: float = BT_ALPHA,
    initial: np.ndarray | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> np.ndarray:
    """Bradley-Terry strengths from a matrix of (possibly fractional) wins[i, j] of i over j.

    Minimises choix's penalised negative log-likelihood,
    sum_ij wins_ij * log(1 + exp(theta_j - theta_i)) + alpha * sum_i theta_i^2,
    by damped Newton steps on the aggregated counts (choix.opt_pairwise takes one row per
    comparison, which is too slow at a million judgments). The penalty makes the problem
    strictly convex, so models that never lose or never meet still get finite strengths;
    at the optimum the strengths sum to zero.
    """
    wins = np.asarray(wins, dtype=np.float64)
    m = len(wins)
    theta = np.zeros(m) if initial is None else np.array(initial, dtype=np.float64)
    if m == 0:
        return theta
    games = wins + wins.T
    value = bt_objective(theta, wins, alpha)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))  # P(i beats j)
        grad = (games * p - wins).sum(axis=1) + 2 * alpha * theta
        weight = games * p * (1 - p)
        hessian = -weight
        hessian[np.diag_indices(m)] = weight.sum(axis=1) - np.diag(weight) + 2 * alpha
        step = np.linalg.solve(hessian, grad)
        # Backtrack when a full Newton step does not lower the objective (far from the optimum).
        scale = 1.0
        while True:
            candidate = theta - scale * step
            new_value = bt_objective(candidate, wins, alpha)
            if new_value <= value + 1e-12 or scale < 1e-6:
                break
            scale /= 2
        theta, value = candidate, new_value
        if np.abs(scale * step).max() < tol:
            break
    return theta


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Bradley-Terry strengths on the Elo scale: mean model 1000, 400 points = 10:1 odds."""
    theta = np.asarray(theta, dtype=np.float64)
    return ELO_ANCHOR + ELO_SCALE * (theta - theta.mean()) if len(theta) else theta


def wins_from_cells(cells: np.ndarray, m: int) -> np.ndarray:
    """cells[(i*m + j)*3 + outcome] counts judgments of model i (as A) vs j (as B):
    outcome 0 A won, 1 B won, 2 tie or both bad (half a win each way)."""
    c = cells.reshape(m, m, 3).astype(np.float64)
    return c[:, :, 0] + 0.5 * c[:, :, 2] + (c[:, :, 1] + 0.5 * c[:, :, 2]).T


def bradley_terry_elo(
    cells: np.ndarray, m: int, *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elo-scale ratings of m models and their bootstrap 95% intervals from outcome cells
    (see wins_from_cells). Returns (rating, lower, upper)."""
    theta = fit_bradley_terry(wins_from_cells(cells, m))
    rating = to_elo(theta)
    n = int(cells.sum())
    if not n or rounds <= 0:
        return rating, rating.copy(), rating.copy()
    # Bootstrap over judgments: resampling N judgments with replacement is a multinomial draw
    # over the (pair, outcome) cells, which costs the same at 1,000 or 1,000,000 judgments.
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cells / n, size=rounds)
    samples = np.array(
        [to_elo(fit_bradley_terry(wins_from_cells(d, m), initial=theta)) for d in draws]
    )
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    return rating, lower, upper


def leaderboard_of(j: Judgments, names: list[str], models: np.ndarray) -> dict:
    mask = j.project_mask
    empty = {"models": [], "matrix": {"models": [], "win_rate": [], "counts": []}, "judgments": 0}
    if not names or not mask.any():
        return empty
    model_a = models[j.unit[mask], 0]
    model_b = models[j.unit[mask], 1]
    choice = j.choice[mask]
    usable = (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
    model_a, model_b, choice = model_a[usable], model_b[usable], choice[usable]
    if not len(choice):
        return empty
    outcome = np.where(choice == A, 0, np.where(choice == B, 1, 2))
    return leaderboard_of_games(names, model_a, model_b, outcome, both_bad=choice == BOTH_BAD)


def leaderboard_of_games(
    names: list[str],
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    *,
    both_bad: np.ndarray | None = None,
) -> dict:
    """The leaderboard of games between models (indexes into `names`): outcome 0 the first
    won, 1 the second, 2 a tie (both_bad marks the ties that were both-bad votes). Pairwise
    judgments are one game each; a ranking of K responses is its K(K-1)/2 pairs."""
    if both_bad is None:
        both_bad = np.zeros(len(outcome), dtype=bool)
    # Only models that met another model in a usable judgment (not those of gold comparisons).
    present, pair = np.unique(np.concatenate([model_a, model_b]), return_inverse=True)
    names = [names[i] for i in present]
    model_a, model_b = pair[: len(model_a)], pair[len(model_a) :]
    m = len(names)
    cells = np.bincount((model_a * m + model_b) * 3 + outcome, minlength=m * m * 3)
    wins = wins_from_cells(cells, m)
    rating, lower, upper = bradley_terry_elo(cells, m)

    c = cells.reshape(m, m, 3)
    # Per model: wins, ties, losses whichever side it was shown on; both-bad counted as ties.
    won = c[:, :, 0].sum(axis=1) + c[:, :, 1].sum(axis=0)
    lost = c[:, :, 1].sum(axis=1) + c[:, :, 0].sum(axis=0)
    tied = c[:, :, 2].sum(axis=1) + c[:, :, 2].sum(axis=0)
    both_bad_j = both_bad
    both_bad = np.bincount(model_a[both_bad_j], minlength=m) + np.bincount(
        model_b[both_bad_j], minlength=m
    )
    order = np.argsort(-rating, kind="stable")
    pair_games = c.sum(axis=2) + c.sum(axis=2).T
    pair_wins = wins  # wins[i, j] already counts ties as half a win each way
    matrix_rate = [
        [
            float(pair_wins[i, k] / pair_games[i, k]) if pair_games[i, k] and i != k else None
            for k in order
        ]
        for i in order
    ]
    return {
        "models": [
            {
                "name": names[i],
                "rating": float(rating[i]),
                "lower": float(lower[i]),
                "upper": float(upper[i]),
                "wins": int(won[i]),
                "ties": int(tied[i]),
                "losses": int(lost[i]),
                "both_bad": int(both_bad[i]),
                "games": int(won[i] + tied[i] + lost[i]),
                "win_rate": ratio(won[i] + 0.5 * tied[i], won[i] + tied[i] + lost[i]),
            }
            for i in order
        ],
        "matrix": {
            "models": [names[i] for i in order],
            "win_rate": matrix_rate,
            "counts": [[int(pair_games[i, k]) for k in order] for i in order],
        },
        "judgments": int(cells.sum()),
        "bootstrap_rounds": BOOTSTRAP_ROUNDS,
    }


def length_bias_of(j: Judgments, lengths: np.ndarray) -> dict:
    """How often the longer response wins a decisive (A or B) judgment of unequal lengths."""
    mask = j.project_mask & ((j.choice == A) | (j.choice == B))
    len_a, len_b = lengths[j.unit[mask], 0], lengths[j.unit[mask], 1]
    comparable = (len_a >= 0) & (len_b >= 0) & (len_a != len_b)
    chose_a = j.choice[mask][comparable] == A
    longer = int((chose_a == (len_a[comparable] > len_b[comparable])).sum())
    n = int(comparable.sum())
    return {
        "n": n,
        "longer_wins": longer,
        "share": ratio(longer, n),
        "p_value": binom_p(longer, n),
    }
