"""What an export may be asked for: the one definition of its options.

`ExportOptions` lists every option once, each field carrying an `Option` spec (kind, help,
whether it applies to the aggregated formats only). The faces read that list and map each kind
to their own widget: the admin's form fields, the command's arguments and the API's fields, so
an option added here appears everywhere. `parse_options` turns raw values from any of them (or
the JSON stored on an ExportJob) into a validated `ExportOptions`; `validate_options` also
checks the raters it names against the accounts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from comparisons.models import ExportFormat

AGGREGATIONS = ("majority", "unanimous", "all")

Kind = Literal["choice", "datetime", "count", "fraction", "flag", "emails"]


class ExportError(ValueError):
    """Bad export options: a clear message for the CLI, the admin form, the API and the job."""


@dataclass(frozen=True)
class Option:
    name: str
    kind: Kind
    help: str
    choices: tuple[str, ...] = ()
    aggregated_only: bool = False  # meaningless for the raw judgment formats
    default: Any = None


def _option(kind: Kind, help: str, *, default: Any = None, **spec: Any) -> Any:
    return dataclasses.field(
        default=default, metadata={"option": {"kind": kind, "help": help, **spec}}
    )


@dataclass(frozen=True)
class ExportOptions:
    aggregation: str = _option(
        "choice",
        "How votes become a preference: majority (more than half the votes), unanimous, or "
        "all (every judgment its own row).",
        default="majority",
        choices=AGGREGATIONS,
        aggregated_only=True,
    )
    since: datetime | None = _option("datetime", "Judgments created at or after (ISO date/time).")
    until: datetime | None = _option("datetime", "Judgments created before (ISO date/time).")
    min_judgments: int | None = _option(
        "count", "Comparisons with at least this many judgments.", aggregated_only=True
    )
    min_agreement: float | None = _option(
        "fraction", "Rows whose agreement is at least this (0 to 1).", aggregated_only=True
    )
    include_gold: bool = _option("flag", "Include judgments of gold comparisons.", default=False)
    include_incomplete: bool = _option(
        "flag",
        "Include comparisons still being judged (by default only complete ones: overlap "
        "reached, or the adaptive rule satisfied).",
        default=False,
    )
    include_late: bool = _option(
        "flag", "Include late judgments (their slot had gone to another rater).", default=False
    )
    exclude_raters: tuple[str, ...] = _option(
        "emails", "Leave out these raters (e-mail addresses).", default=()
    )
    min_gold_accuracy: float | None = _option(
        "fraction", "Leave out raters whose gold accuracy is below this (0 to 1)."
    )
    min_rater_quality: float | None = _option(
        "fraction", "Leave out raters whose quality score is below this (0 to 1)."
    )

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        data["exclude_raters"] = list(self.exclude_raters)
        return data

    def stored(self) -> dict[str, Any]:
        """The options that differ from the defaults, in JSON form (what parse_options reads)."""
        defaults = ExportOptions().as_json()
        return {k: v for k, v in self.as_json().items() if v != defaults[k]}


def below(value: float | None, threshold: float | None) -> bool:
    """Whether a value fails a minimum; an unknown value (a rater with no gold judged yet, say)
    never does, so it is kept."""
    return value is not None and threshold is not None and value < threshold


OPTIONS: tuple[Option, ...] = tuple(
    Option(name=f.name, default=f.default, **f.metadata["option"])
    for f in dataclasses.fields(ExportOptions)
)


def parse_format(value: Any) -> ExportFormat:
    try:
        return ExportFormat(value)
    except ValueError:
        raise ExportError(
            f"unknown format {value!r}; choose one of {', '.join(ExportFormat.values)}"
        ) from None


def parse_options(format: str, **raw: Any) -> ExportOptions:
    """Validate export options for `format`; raise ExportError naming the first bad one.

    Empty values ("", None, False, an empty list) mean "not given". Options that apply to the
    aggregated formats only are refused for the raw ones unless they are at their default.
    """
    fmt = parse_format(format)
    unknown = sorted(set(raw) - {o.name for o in OPTIONS})
    if unknown:
        raise ExportError(f"unknown option(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = raw.get(option.name)
        if value in (None, "", False, [], ()):
            continue
        parsed = _PARSERS[option.kind](option, value)
        if fmt.is_raw and option.aggregated_only and parsed != option.default:
            raise ExportError(f"{option.name} applies only to the pairwise formats, not {fmt}")
        values[option.name] = parsed
    opts = ExportOptions(**values)
    if opts.since and opts.until and opts.since >= opts.until:
        raise ExportError("since must be before until")
    return opts


def named_raters(emails: tuple[str, ...]) -> dict[str, int]:
    """{e-mail: user id} of the raters an export names; ExportError if one has no account."""
    found = {
        email.lower(): pk
        for email, pk in User.objects.filter(email__in=emails).values_list("email", "id")
    }
    missing = [e for e in emails if e not in found]
    if missing:
        raise ExportError(f"no user with e-mail {', '.join(missing)}")
    return found


def validate_options(format: str, **raw: Any) -> ExportOptions:
    """parse_options, and the raters it names exist: what a job is checked against up front."""
    opts = parse_options(format, **raw)
    named_raters(opts.exclude_raters)
    return opts


def _choice(option: Option, value: Any) -> str:
    if value not in option.choices:
        raise ExportError(f"{option.name} must be one of {', '.join(option.choices)}")
    return value


def _datetime(option: Option, value: Any) -> datetime:
    if isinstance(value, datetime):
        when = value
    else:
        text = str(value)
        when = parse_datetime(text)
        if when is None:
            day = parse_date(text)
            if day is None:
                raise ExportError(f"{option.name}: not a date or date-time: {text!r}")
            when = datetime(day.year, day.month, day.day)
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_default_timezone())
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 text may carry.
        return when.astimezone(UTC)
    except OverflowError:
        raise ExportError(f"{option.name}: out of range: {value!r}") from None


def _count(option: Option, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ExportError(f"{option.name}: not a whole number: {value!r}") from None
    if number < 1:
        raise ExportError(f"{option.name} must be at least 1")
    return number


def _fraction(option: Option, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExportError(f"{option.name}: not a number: {value!r}") from None
    if not 0 <= number <= 1:
        raise ExportError(f"{option.name}: must be between 0 and 1, got {number}")
    return number


def _flag(option: Option, value: Any) -> bool:
    return bool(value)


def _emails(option: Option, value: Any) -> tuple[str, ...]:
    if not isinstance(value, str | list | tuple):
        raise ExportError(f"{option.name}: a list of e-mail addresses, not {value!r}")
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return tuple(sorted({str(e).strip().lower() for e in items if str(e).strip()}))


_PARSERS = {
    "choice": _choice,
    "datetime": _datetime,
    "count": _count,
    "fraction": _fraction,
    "flag": _flag,
    "emails": _emails,
}
