"""`manage.py import_comparisons PROJECT_SLUG FILE.jsonl`: all-or-nothing JSONL import."""

from __future__ import annotations

import io
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comparisons.imports import import_comparisons
from comparisons.models import Project


class Command(BaseCommand):
    help = (
        "Import comparisons from a JSON Lines file into a project. All or nothing: a file with "
        "any bad line is rejected, every bad line is listed, and the command exits non-zero."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_slug", help="slug of the project to import into")
        parser.add_argument("file", help="JSONL file, one comparison per line ('-' reads stdin)")
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="skip lines whose external_id the project already has instead of rejecting",
        )
        parser.add_argument(
            "--max-content-chars",
            type=int,
            metavar="N",
            help="longest prompt or response text accepted (default: "
            "RATERHUB_IMPORT_MAX_CONTENT_CHARS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug, path = options["project_slug"], options["file"]
        max_chars = options["max_content_chars"]
        if max_chars is not None and max_chars < 1:
            raise CommandError("--max-content-chars must be at least 1.")
        try:
            project = Project.objects.get(slug=slug)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {slug!r}.") from None

        # Undecodable bytes become lone surrogates instead of an exception mid-file, so the
        # import reports them as a bad line with its number.
        if path == "-":
            stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
            source: AbstractContextManager = nullcontext(stream)  # leave stdin open
        else:
            try:
                source = stream = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        with source:
            result = import_comparisons(
                project,
                stream,
                skip_existing=options["skip_existing"],
                max_content_chars=max_chars,
            )

        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            if result.unreported_errors:
                self.stderr.write(
                    f"... and {result.unreported_errors} more bad lines "
                    f"(only the first {len(result.errors)} are listed)."
                )
            if any(error.code == "exists" for error in result.errors):
                self.stderr.write(
                    "To skip comparisons the project already has, run again with --skip-existing."
                )
            source_name = "standard input" if path == "-" else path
            raise CommandError(
                f"Rejected {source_name}: {result.error_count} bad line(s) of "
                f"{result.total_lines}; nothing was imported."
            )

        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
        skipped = f"; skipped {result.skipped} already present" if result.skipped else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.created} comparisons ({result.gold} gold) into {slug!r} "
                f"from {result.total_lines} lines{skipped}."
            )
        )
