"""`python manage.py export_preferences PROJECT_SLUG --format FORMAT --output PATH [options]`.

Runs the same `export_preferences` function the Celery job runs, in this process, with a
progress line on stderr when it is a terminal; writes the manifest beside the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from comparisons.exports import OPTIONS, ExportError, export_preferences, write_manifest
from comparisons.models import ExportFormat, Project

# The export options' own definition (comparisons.exports.OPTIONS), each kind as arguments.
_ARGUMENTS = {
    "choice": lambda o: {"choices": o.choices},
    "datetime": lambda o: {"metavar": "DATE"},
    "count": lambda o: {"type": int, "metavar": "N"},
    "fraction": lambda o: {"type": float, "metavar": "X"},
    "flag": lambda o: {"action": "store_true"},
    "emails": lambda o: {"action": "append", "metavar": "EMAIL"},
}


def _flag(option) -> str:
    flag = "--" + option.name.replace("_", "-")
    # A list is given one item at a time: --exclude-rater A --exclude-rater B.
    return flag.removesuffix("s") if option.kind == "emails" else flag


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of arguments, with the description and the format list kept as written."""


class Command(BaseCommand):
    help = (
        "Export a project's judgments or preference pairs to a file, written whole or not\n"
        "at all, with PATH.manifest.json beside it (options, counts, definitions, checksum)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # The formats are listed with what each holds, the options with their own help: the
        # help is complete by itself.
        formats = "\n".join(f"  {f.value:<18} {f.label}" for f in ExportFormat)
        kwargs.setdefault("epilog", f"formats:\n{formats}")
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = _HelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT_SLUG", help="the project to export")
        parser.add_argument(
            "--format",
            required=True,
            choices=ExportFormat.values,
            metavar="FORMAT",
            help="the file format (listed below)",
        )
        parser.add_argument(
            "--output",
            required=True,
            metavar="PATH",
            help="the file to write (its folder must exist)",
        )
        for option in OPTIONS:
            arguments = _ARGUMENTS[option.kind](option)
            parser.add_argument(_flag(option), dest=option.name, help=option.help, **arguments)
        parser.add_argument("--no-progress", action="store_true", help="never draw progress")

    def handle(self, *args, **opts):
        try:
            project = Project.objects.get(slug=opts["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {opts['project']!r}") from None
        output = Path(opts["output"])
        if not output.parent.is_dir():
            raise CommandError(f"directory {output.parent} does not exist")
        options = {option.name: opts[option.name] for option in OPTIONS}
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
        manifest_path = write_manifest(output.with_name(output.name + ".manifest.json"), manifest)
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
