"""The project's admin form: the rating scheme's criteria edited as rows (name, help text), and
the instructions with a preview of their Markdown as raters see it.

The rows become `Project.criteria` (the names, in order, checked by `validate_criteria` as
every other writer of them is) and `Project.criteria_help` ({name: help text}). Rows need no
script: the form shows the criteria plus a few empty rows, and an emptied name
removes its row.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from comparisons.models import (
    MAX_CRITERIA,
    MAX_CRITERION_CHARS,
    MAX_CRITERION_HELP_CHARS,
    Project,
    validate_criteria,
)

SPARE_ROWS = 3  # empty rows offered below the criteria, up to MAX_CRITERIA rows in all


class CriteriaRowsWidget(forms.Widget):
    template_name = "admin/comparisons/project/_criteria_rows.html"

    def format_value(self, value):
        return value

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = [tuple(row) for row in (value or [])]
        rows += [("", "")] * max(0, min(MAX_CRITERIA, len(rows) + SPARE_ROWS) - len(rows))
        context["widget"].update(
            rows=[
                {"name": f"{name}-{i}-name", "help_name": f"{name}-{i}-help", "value": n, "help": h}
                for i, (n, h) in enumerate(rows)
            ],
            max_name=MAX_CRITERION_CHARS,
            max_help=MAX_CRITERION_HELP_CHARS,
        )
        return context

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        # The site's template engine (templates/), not the form renderer's own search path.
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))

    def value_from_datadict(self, data, files, name):
        rows, i = [], 0
        # Every posted row, however many (a hand-made post may send more than shown).
        while f"{name}-{i}-name" in data or f"{name}-{i}-help" in data:
            rows.append((data.get(f"{name}-{i}-name", ""), data.get(f"{name}-{i}-help", "")))
            i += 1
        return rows

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-0-name" not in data


class CriteriaRowsField(forms.Field):
    """Rows of (name, help text) -> [(name, help)] without the rows left empty."""

    widget = CriteriaRowsWidget

    def to_python(self, value):
        rows = []
        for name, help_text in value or []:
            name, help_text = str(name).strip(), str(help_text).strip()
            if not name and help_text:
                raise ValidationError(f"The help text “{help_text[:30]}” has no criterion name.")
            if name:
                rows.append((name, help_text))
        return rows

    def validate(self, value):
        super().validate(value)
        validate_criteria([name for name, _ in value])  # the scheme's one rule, as everywhere
        long = [name for name, help_text in value if len(help_text) > MAX_CRITERION_HELP_CHARS]
        if long:
            raise ValidationError(
                f"Keep the help text of “{long[0]}” to {MAX_CRITERION_HELP_CHARS} characters."
            )


class InstructionsWidget(forms.Textarea):
    """The instructions' textarea, then their preview: the saved text rendered by the rating
    page's own sanitizer, and a button that renders the text being edited (htmx, no inline
    script: the CSP forbids it). Without JavaScript the preview shows what was last saved."""

    preview_template = "admin/comparisons/project/_instructions.html"

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        textarea = super().render(name, value, attrs, renderer)
        preview = render_to_string(
            self.preview_template,
            {
                "name": name,
                "text": value or "",
                "url": reverse("admin:comparisons_project_preview_instructions"),
            },
        )
        return mark_safe(textarea + preview)


class ProjectAdminForm(forms.ModelForm):
    criteria = CriteriaRowsField(
        required=False,
        label="Criteria",
        help_text=(
            "One row per criterion raters answer beside their overall choice (e.g. helpfulness, "
            f"honesty), with a line of help shown under it. At most {MAX_CRITERIA}; empty a "
            "name to remove its row, save to get more empty rows."
        ),
    )

    class Meta:
        model = Project
        # The admin builds the form with its fieldsets' fields; criteria_help is set in
        # clean_criteria, from the same rows.
        fields = ("criteria",)
        widgets = {"instructions": InstructionsWidget}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        help_texts = self.instance.criteria_help or {}
        self.initial["criteria"] = [
            (name, help_texts.get(name, "")) for name in self.instance.criteria or []
        ]

    def clean_criteria(self) -> list[str]:
        rows = self.cleaned_data["criteria"]
        # Not a form field of its own: set on the instance, which the model's validators check.
        self.instance.criteria_help = {name: help_text for name, help_text in rows if help_text}
        return [name for name, _ in rows]
