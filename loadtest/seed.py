"""Seed a cluster's database for the load and fault suites, and log raters in.

A project to rate (`load`, overlap 3) with enough comparisons that the raters never run out,
and N raters, each logged in with its own session (made by Django's session store, as a login
would make it, so Locust needs no password and allauth's per-address login limit, which all
these raters on 127.0.0.1 would share, is not what gets measured). Optionally a second project
(`load-export`) already judged, for exports that must come out byte-identical under faults.

Run inside the cluster's environment: `python -m loadtest.seed --raters 1000 --comparisons 60000`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
from datetime import timedelta
from pathlib import Path

BATCH = 5000
TEXT = (
    "## Answer\n\nTCP slow start grows the congestion window exponentially until the first loss "
    "or the slow-start threshold, then hands over to congestion avoidance.\n\n"
    "```python\ndef cwnd_after(rtts, mss=1460):\n    return mss * 2 ** rtts\n```\n\n"
    "| phase | growth |\n|---|---|\n| slow start | exponential |\n| avoidance | linear |\n\n"
)


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raterhub.settings")
    import django

    django.setup()


def _comparisons(project, n: int, tag: str, **fields) -> list:
    from comparisons.models import Comparison, Response

    fields.setdefault("open_slots", project.initial_slots)
    made = []
    for start in range(0, n, BATCH):
        rows = Comparison.objects.bulk_create(
            Comparison(
                project=project,
                external_id=f"{tag}-{i:07d}",
                # Distinct texts: each comparison is rendered once, then cached, as in real use.
                prompt=[{"role": "user", "content": f"Explain TCP slow start ({tag} {i})."}],
                **fields,
            )
            for i in range(start, min(n, start + BATCH))
        )
        Response.objects.bulk_create(
            Response(comparison=c, position=pos, model_name=f"model-{pos}",
                     content=f"{TEXT}Variant {pos} of {c.external_id}. " * 3)
            for c in rows
            for pos in (0, 1)
        )  # fmt: skip
        made.extend(rows)
    return made


def seed(*, raters: int, comparisons: int, export_comparisons: int, sessions_file: Path) -> dict:
    _setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from comparisons.models import Assignment, Judgment, Project

    with transaction.atomic():
        project, _ = Project.objects.get_or_create(
            slug="load", defaults={"name": "Load test", "overlap": 3}
        )
        # Topped up to `comparisons` untouched ones, so that a run after earlier runs never
        # rates the tail end of the queue (a project near its end is slower to pick from).
        untouched = project.comparisons.filter(open_slots=project.initial_slots).count()
        if untouched < comparisons:
            _comparisons(project, comparisons - untouched, f"load{project.comparisons.count()}")
        password = make_password(secrets.token_urlsafe(16))
        existing = set(
            User.objects.filter(email__startswith="rater").values_list("email", flat=True)
        )
        User.objects.bulk_create(
            User(email=f"rater{i:05d}@load.example", password=password)
            for i in range(raters)
            if f"rater{i:05d}@load.example" not in existing
        )
        users = list(
            User.objects.filter(email__endswith="@load.example").order_by("email")[:raters]
        )
        project.raters.add(*users)

        if export_comparisons and not Project.objects.filter(slug="load-export").exists():
            # Already judged by 20 of the raters, with fixed choices: its export never changes.
            done = Project.objects.create(slug="load-export", name="Load export", overlap=20)
            done.raters.add(*users[:20])
            rng = random.Random(18)
            now = timezone.now()
            # Complete, as the queue leaves a comparison whose 20 judgments are in: the
            # export leaves out incomplete comparisons by default.
            rows = _comparisons(done, export_comparisons, "export", open_slots=0,
                                judged_count=20, lease_count=20, completed_at=now)  # fmt: skip
            for start in range(0, len(rows), BATCH // 20):
                chunk = rows[start : start + BATCH // 20]
                leases = Assignment.objects.bulk_create(
                    Assignment(project=done, comparison=c, rater=u, status="submitted",
                               leased_at=now, expires_at=now + timedelta(minutes=10), finished_at=now)
                    for c in chunk
                    for u in users[:20]
                )  # fmt: skip
                Judgment.objects.bulk_create(
                    Judgment(assignment=a, project=done, comparison_id=a.comparison_id,
                             rater_id=a.rater_id, choice=rng.choice(["a", "b", "tie"]),
                             duration_ms=rng.randint(2000, 20000))
                    for a in leases
                )  # fmt: skip

    sessions = []
    for user in users:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append(store.session_key)
    sessions_file.parent.mkdir(parents=True, exist_ok=True)
    sessions_file.write_text(json.dumps({"project": "load", "sessions": sessions}))
    return {"raters": len(users), "project": project.slug}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=1000)
    parser.add_argument("--comparisons", type=int, default=60000)
    parser.add_argument("--export-comparisons", type=int, default=0)
    parser.add_argument("--sessions-file", type=Path, default=Path("var/loadtest/sessions.json"))
    args = parser.parse_args()
    print(seed(raters=args.raters, comparisons=args.comparisons,
               export_comparisons=args.export_comparisons, sessions_file=args.sessions_file))  # fmt: skip


if __name__ == "__main__":
    main()
