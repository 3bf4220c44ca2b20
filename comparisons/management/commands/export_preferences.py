"""`python manage.py export_preferences PROJECT_SLUG --format FORMAT --output PATH [options]`.

Runs the same `export_preferences` function the Celery job runs, in this process, with a
progress line on stderr when it is a terminal; writes the manifest beside the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from comparisons.exports import AGGREGATIONS, FORMATS, ExportError, export_preferences
from comparisons.models import Project


class Command(BaseCommand):
    help = "Export a project's judgments or preference pairs to a file (see DESIGN.md's formats)."

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT_SLUG")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", required=True, metavar="PATH")
        parser.add_argument("--aggregation", choices=AGGREGATIONS, default="majority")
        parser.add_argument("--since", help="judgments created at or after (ISO date/time)")
        parser.add_argument("--until", help="judgments created before (ISO date/time)")
        parser.add_argument("--min-judgments", type=int)
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--include-gold", action="store_true")
        parser.add_argument("--include-late", action="store_true")
        parser.add_argument(
            "--exclude-rater", action="append", default=[], metavar="EMAIL", dest="exclude_raters"
        )
        parser.add_argument("--min-gold-accuracy", type=float)
        parser.add_argument("--min-rater-quality", type=float)
        parser.add_argument("--no-progress", action="store_true", help="never draw progress")

    def handle(self, *args, **opts):
        try:
            project = Project.objects.get(slug=opts["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {opts['project']!r}") from None
        output = Path(opts["output"])
        if not output.parent.is_dir():
            raise CommandError(f"directory {output.parent} does not exist")
        options = {
            name: opts[name]
            for name in (
                "aggregation",
                "since",
                "until",
                "min_judgments",
                "min_agreement",
                "include_gold",
                "include_late",
                "exclude_raters",
                "min_gold_accuracy",
                "min_rater_quality",
            )
            if opts[name] not in (None, False, [])
        }
        if opts["format"].startswith("judgments") and options.get("aggregation") == "majority":
            del options["aggregation"]  # the default; only pairwise formats aggregate
        draw = not opts["no_progress"] and self.stderr.isatty()
        try:
            manifest = export_preferences(
                project,
                opts["format"],
                output,
                progress=self._draw_progress if draw else None,
                **options,
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if draw:
                self.stderr.write("", style_func=str)
        manifest_path = output.with_name(output.name + ".manifest.json")
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        counts = manifest["counts"]
        self.stderr.write(
            f"{counts['rows_written']} rows from {counts['judgments']} judgments of "
            f"{counts['comparisons']} comparisons; dropped: {counts['rows_dropped'] or 'none'}",
            style_func=str,
        )
        self.stdout.write(str(manifest_path))

    def _draw_progress(self, done: int, total: int, width: int = 30) -> None:
        # A plain carriage-return line: no dependency, and harmless in a log if redirected.
        fraction = done / total if total else 1.0
        filled = int(width * fraction)
        bar = "#" * filled + "." * (width - filled)
        self.stderr.write(
            f"\r[{bar}] {fraction:6.1%} {done}/{total} judgments", style_func=str, ending=""
        )
        self.stderr.flush()
