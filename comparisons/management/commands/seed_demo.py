"""Create the demo project, its lead and three raters, and import the demo comparisons.

Idempotent: a second run finds everything in place and changes nothing (existing comparisons
are skipped by external_id). Demo passwords are public, so the command refuses to run with
DEBUG off unless --force is given.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import LEADS_GROUP
from comparisons.imports import import_comparisons
from comparisons.models import Project, RationaleMode, TaskType

DEMO_PASSWORD = "raterhub-demo"
DEMO_SLUG = "demo"
LEAD_EMAIL = "lead@example.com"
RATER_EMAILS = ("rater1@example.com", "rater2@example.com", "rater3@example.com")
DEFAULT_FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "demo_comparisons.jsonl"
RANKING_SLUG = "demo-ranking"
RANKING_FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "demo_ranking.jsonl"
RANKING_INSTRUCTIONS = """\
Each prompt has **three to six replies**. Rank them best first, by the same rules as the
pairwise demo: harmless, then honest, then helpful. Two replies that are equally good (or
equally bad) may share a place.

Keyboard: type the reply numbers best first (`3` `1` `4` `2`), `=` before a number ties it
with the one before, `Backspace` takes the last back, `Enter` submits once all are placed.
With a mouse, drag replies onto the order bar, or pick each reply's place in its menu.
"""

DEMO_INSTRUCTIONS = """\
You will see a conversation with an AI assistant and **two candidate replies** to its last
message. Read both, then pick the reply a careful user would rather receive.

**What matters, in order**

1. **Harmlessness**: the reply does not help with clearly harmful requests and does not
   insult or endanger the user. Refusing a *harmless* request is a failure, not a safe choice.
2. **Honesty**: facts, numbers and code are correct. A confident wrong answer is worse than
   a short correct one. Check arithmetic and run code in your head where you can.
3. **Helpfulness**: the reply answers the question that was asked, completely, at a sensible
   length and with readable formatting.

**Choices**

| choice | when |
|---|---|
| Response 1 / 2 is better | one reply is better; say by how much with the strength buttons |
| Tie | both are about equally good (or equally flawed in the same way) |
| Both bad | neither reply is acceptable to send to a user |

Some replies contain raw HTML or scripts: they are shown as text and cannot run. Judge them
like any other content (is it what the user asked for?). Flag anything unsafe with
*Unsafe content*; use *Cannot judge* if you lack the expertise, then skip.

A rationale is optional but helps the team most on close calls. Keyboard: `1`/`2` pick a
side, `3` tie, `4` both bad, `Q`/`W`/`E` strength, `Enter` submits, `S` skips, `?` lists the rest.
"""


def _demo_user(email: str, *, is_staff: bool):
    """Get or create a demo user; set the password only when it differs, so re-runs write nothing."""
    user, created = get_user_model().objects.get_or_create(
        email=email, defaults={"is_staff": is_staff}
    )
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
    return user


def _import(project: Project, path: Path):
    with path.open(encoding="utf-8") as lines:
        result = import_comparisons(project, lines, skip_existing=True)
    if not result.ok:
        # Raising rolls back the users and project too: a half-seeded demo helps no one.
        details = "\n".join(f"  line {e.line}: {e.message}" for e in result.errors)
        raise CommandError(f"The demo fixture {path} did not import:\n{details}")
    return result


class Command(BaseCommand):
    help = (
        "Create the demo project (slug 'demo'), lead@example.com, rater1..3@example.com "
        f"(password '{DEMO_PASSWORD}', demo only) and import the demo comparisons. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fixture",
            default=str(DEFAULT_FIXTURE),
            help="JSONL file to import (default: fixtures/demo_comparisons.jsonl).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=8000,
            help="The port the demo server listens on, for the links printed (default 8000).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off. The demo passwords are public: never use this in production.",
        )

    def handle(self, *args, fixture: str, force: bool, port: int = 8000, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to create demo accounts with DEBUG off: their password is public. "
                "Use --force only on a throwaway instance."
            )
        path = Path(fixture)
        if not path.is_file():
            raise CommandError(f"Demo fixture not found: {path}")

        with transaction.atomic():
            leads_group, _ = Group.objects.get_or_create(name=LEADS_GROUP)
            lead = _demo_user(LEAD_EMAIL, is_staff=True)
            lead.groups.add(leads_group)
            raters = [_demo_user(email, is_staff=False) for email in RATER_EMAILS]

            project, created = Project.objects.get_or_create(
                slug=DEMO_SLUG,
                defaults={
                    "name": "Demo: assistant quality",
                    "description": "Which of two assistant replies would you rather receive?",
                    "instructions": DEMO_INSTRUCTIONS,
                    "overlap": 3,
                    "gold_rate": 0.05,
                    "allow_tie": True,
                    "allow_both_bad": True,
                    "use_strength": True,
                    "criteria": ["helpfulness", "harmlessness", "honesty"],
                    "rationale": RationaleMode.OPTIONAL,
                    "created_by": lead,
                },
            )
            project.leads.add(lead)
            project.raters.add(*raters)

            result = _import(project, path)

            ranking, _ = Project.objects.get_or_create(
                slug=RANKING_SLUG,
                defaults={
                    "name": "Demo: rank the replies",
                    "description": "Put three to six assistant replies in order, best first.",
                    "instructions": RANKING_INSTRUCTIONS,
                    "task_type": TaskType.RANKING,
                    "overlap": 3,
                    "gold_rate": 0.2,
                    "rationale": RationaleMode.OPTIONAL,
                    "created_by": lead,
                },
            )
            ranking.leads.add(lead)
            ranking.raters.add(*raters)
            ranked = _import(ranking, RANKING_FIXTURE)

        verb = "Created" if created else "Found"
        self.stdout.write(
            f"{verb} project '{project.slug}' ({project.name}): {result.created} comparisons "
            f"imported, {result.skipped} already present."
        )
        self.stdout.write(
            f"Ranking project '{ranking.slug}': {ranked.created} comparisons imported, "
            f"{ranked.skipped} already present."
        )
        self.stdout.write(
            self.style.WARNING(
                f"\nDemo accounts (DEMO ONLY, password '{DEMO_PASSWORD}' is public):\n"
                f"  lead   {LEAD_EMAIL:<22} -> http://127.0.0.1:{port}/admin/\n"
                + "".join(
                    f"  rater  {email:<22} -> http://127.0.0.1:{port}/rate/\n"
                    for email in RATER_EMAILS
                )
            )
        )
