"""The rating form. Choices are what the rater saw ("1" is the left response); the view maps
them to canonical a/b with the assignment's display order before calling the queue."""

from __future__ import annotations

from django import forms
from django.core.validators import MinLengthValidator

from comparisons.models import Flag, Project, Strength

SHOWN_CHOICES = {
    "1": "Response 1 is better",
    "2": "Response 2 is better",
    "tie": "Tie",
    "both_bad": "Both are bad",
}
CRITERION_LABELS = {"1": "Response 1", "2": "Response 2", "tie": "Tie", "both_bad": "Both bad"}
# The keyboard shortcuts shown beside each option (static/js/rate.js implements them).
SHORTCUT_KEYS = {
    "1": "1",
    "2": "2",
    "tie": "3",
    "both_bad": "4",
    Strength.SLIGHTLY: "Q",
    Strength.CLEARLY: "W",
    Strength.MUCH: "E",
    Flag.UNSAFE: "U",
    Flag.CANNOT_JUDGE: "X",
}
MAX_DURATION_MS = 24 * 3600 * 1000


def criterion_field_name(index: int) -> str:
    return f"criterion_{index}"


class JudgmentForm(forms.Form):
    # Errors come back from the server in the panel, the same with or without JavaScript,
    # instead of the browser's own bubbles.
    use_required_attribute = False

    choice = forms.ChoiceField(
        widget=forms.RadioSelect,
        error_messages={"required": "Choose which response is better (keys 1 to 4)."},
    )
    strength = forms.ChoiceField(choices=Strength.choices, widget=forms.RadioSelect, required=False)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    flags = forms.MultipleChoiceField(
        choices=Flag.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    duration_ms = forms.IntegerField(
        widget=forms.HiddenInput, required=False, min_value=0, max_value=MAX_DURATION_MS
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        on_screen = {"a": "1", "b": "2", "tie": "tie", "both_bad": "both_bad"}
        shown = [on_screen[c] for c in project.allowed_choices()]
        self.fields["choice"].choices = [(c, SHOWN_CHOICES[c]) for c in shown]
        if not project.use_strength:
            del self.fields["strength"]
        if project.rationale == Project.Rationale.OFF:
            del self.fields["rationale"]
        else:
            field = self.fields["rationale"]
            field.required = project.rationale == Project.Rationale.REQUIRED
            if project.rationale_min_chars:
                field.min_length = project.rationale_min_chars
                field.validators.append(MinLengthValidator(project.rationale_min_chars))
            field.error_messages["required"] = "This project asks for a rationale."
        self.criteria: list[tuple[str, str]] = []
        for i, name in enumerate(project.criteria or []):
            key = criterion_field_name(i)
            label = str(name).replace("_", " ").capitalize()
            self.fields[key] = forms.ChoiceField(
                label=label,
                choices=[(c, CRITERION_LABELS[c]) for c in shown],
                widget=forms.RadioSelect,
                error_messages={"required": f"Answer “{label}” too (C, then 1 to 4)."},
            )
            self.criteria.append((key, str(name)))

    def clean(self):
        data = super().clean()
        if "strength" in self.fields:
            # Strength qualifies a preference only: needed for 1/2, meaningless for tie/both bad.
            if data.get("choice") in ("1", "2") and not data.get("strength"):
                self.add_error("strength", "Say how much better (Q, W or E).")
            elif data.get("choice") not in ("1", "2"):
                data["strength"] = ""
        return data

    def shown_criteria(self) -> dict[str, str]:
        return {
            name: self.cleaned_data[key]
            for key, name in self.criteria
            if self.cleaned_data.get(key)
        }

    # The template writes radios and checkboxes from these plain dicts instead of rendering a
    # widget template per option: the panel is rendered on every submit, and per-option widget
    # templates were a quarter of a submit's CPU time.
    def options(self, name: str) -> list[dict]:
        bound = self[name]
        value = bound.value()
        selected = {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}
        return [
            {
                "id": f"id_{name}_{i}",
                "value": v,
                "label": label,
                "key": SHORTCUT_KEYS.get(v, "") if name in ("choice", "strength", "flags") else "",
                "checked": v in selected,
            }
            for i, (v, label) in enumerate(bound.field.choices)
        ]

    def choice_options(self) -> list[dict]:
        return self.options("choice")

    def strength_options(self) -> list[dict]:
        return self.options("strength") if "strength" in self.fields else []

    def flag_options(self) -> list[dict]:
        return self.options("flags")

    def criterion_groups(self) -> list[dict]:
        return [
            {"name": key, "label": self.fields[key].label, "errors": self.errors.get(key),
             "options": self.options(key)}
            for key, _ in self.criteria
        ]  # fmt: skip
