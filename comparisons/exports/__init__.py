"""Preference exports: raw judgments and the aggregated pairs training libraries load as they are.

Formats (names are a contract, see the README): `trl`, `trl-parquet` (TRL's conversational
preference format with an explicit prompt), `trl-kto` (TRL's unpaired format), `openai-dpo`
(OpenAI preference fine-tuning) and `judgments`, `judgments-parquet`, `judgments-csv` (one row
per judgment, every raw field); the list is `comparisons.models.ExportFormat`.

The package splits along what each part needs:
  options   the one definition of the export options, read by the admin, the CLI and the API
  verdicts  votes to verdicts (pure maths)
  rows      verdicts and judgments to rows, and the file writers (pure)
  source    what is read from the database
  files     export_preferences: one export to one file, whole or not at all, with its manifest
  jobs      ExportJob rows run by a Celery worker
"""

from comparisons.exports.files import EXPORT_FILE_MODE, export_preferences, write_manifest
from comparisons.exports.jobs import (
    create_export_job,
    exports_to_send,
    mark_sent,
    remove_orphaned_partials,
    requeue_stalled_exports,
    run_export_job,
    storage_name,
)
from comparisons.exports.options import (
    OPTIONS,
    ExportError,
    ExportOptions,
    parse_options,
    validate_options,
)
from comparisons.exports.source import pseudonym
from comparisons.exports.verdicts import Verdict, aggregate

__all__ = [
    "EXPORT_FILE_MODE",
    "OPTIONS",
    "ExportError",
    "ExportOptions",
    "Verdict",
    "aggregate",
    "create_export_job",
    "export_preferences",
    "exports_to_send",
    "mark_sent",
    "parse_options",
    "pseudonym",
    "remove_orphaned_partials",
    "requeue_stalled_exports",
    "run_export_job",
    "storage_name",
    "validate_options",
    "write_manifest",
]
