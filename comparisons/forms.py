"""The rating form: what the page shows and posts, in screen terms ("1" is the left response).

It checks nothing. `answer()` maps a post to the canonical values that
comparisons.queue.submit_judgment takes, and the queue's one rule set (`check_answer`) decides;
`add_answer_errors` puts its messages back beside the fields they concern.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from comparisons.models import Assignment, Flag, Judgment, Project, RationaleMode, Strength
from comparisons.ranking import tiers_from_ranks

ON_SCREEN = {"a": "1", "b": "2", "tie": "tie", "both_bad": "both_bad"}
# Short: the choices sit in the decision bar under "Which response is better?", four to a row
# on a phone.
SHOWN_CHOICES = {"1": "Response 1", "2": "Response 2", "tie": "Tie", "both_bad": "Both bad"}
CRITERION_LABELS = SHOWN_CHOICES
# A criterion left at this value is not posted, and the queue's rule makes it follow the
# overall choice.
SAME_AS_OVERALL = ""
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
# Inside a criterion, "0" sets it back to "same as overall" (1-4 as for the overall choice).
CRITERION_KEYS = {SAME_AS_OVERALL: "0", "1": "1", "2": "2", "tie": "3", "both_bad": "4"}
# The key that moves to each criterion, in order (letters no other shortcut uses).
CRITERION_REACH_KEYS = "AFGHILOPTV"


class _Values(forms.Field):
    """Every value posted under the field's name (checkboxes), unchecked."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        return [str(v) for v in value or []]


class JudgmentForm(forms.Form):
    # Errors come back from the server in the panel, the same with or without JavaScript,
    # instead of the browser's own bubbles.
    use_required_attribute = False

    choice = forms.CharField(required=False)
    strength = forms.CharField(required=False)
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    flags = _Values(required=False)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        shown = [ON_SCREEN[c] for c in project.allowed_choices()]
        self.option_labels: dict[str, list[tuple[str, str]]] = {
            "choice": [(c, SHOWN_CHOICES[c]) for c in shown],
            "strength": list(Strength.choices),
            "flags": list(Flag.choices),
        }
        if not project.use_strength:
            del self.fields["strength"]
        if project.rationale == RationaleMode.OFF:
            del self.fields["rationale"]
        else:
            self.fields["rationale"].required = project.rationale == RationaleMode.REQUIRED
        self.criteria: list[tuple[str, str]] = []
        for i, name in enumerate(project.criteria or []):
            key = f"criterion_{i}"
            self.fields[key] = forms.CharField(
                required=False, label=str(name).replace("_", " ").capitalize()
            )
            self.option_labels[key] = [(SAME_AS_OVERALL, "Same as overall")] + [
                (c, CRITERION_LABELS[c]) for c in shown
            ]
            self.criteria.append((key, str(name)))
        self.criteria_errors: list[str] = []
        self.criteria_help: dict[str, str] = project.criteria_help or {}

    @staticmethod
    def initial_from(judgment: Judgment, assignment: Assignment) -> dict:
        """A judgment in screen terms, to show it again for revision (the inverse of answer)."""
        left, right = assignment.display_order
        shown = {left: "1", right: "2"}

        def on_screen(choice: str) -> str:
            return shown.get(choice, choice)

        initial = {
            "choice": on_screen(judgment.choice),
            "strength": judgment.strength or "",
            "rationale": judgment.rationale,
            "flags": list(judgment.flags or []),
        }
        for i, name in enumerate(judgment.project.criteria or []):
            value = (judgment.criteria or {}).get(str(name))
            same = value in (None, judgment.choice)
            initial[f"criterion_{i}"] = SAME_AS_OVERALL if same else on_screen(value)
        return initial

    def answer(self, assignment: Assignment) -> dict:
        """The post in canonical terms, as submit_judgment takes it (call after is_valid)."""
        data = self.cleaned_data
        shown = assignment.canonical_choice
        return {
            "choice": shown(data["choice"]) if data.get("choice") else "",
            "strength": data.get("strength") or None,
            "criteria": {name: shown(data[key]) for key, name in self.criteria if data.get(key)},
            "rationale": data.get("rationale", ""),
            "flags": data.get("flags", []),
        }

    def add_answer_errors(self, exc: ValidationError) -> None:
        """The queue's messages beside their fields; criteria ones above the criteria."""
        for field, messages in exc.message_dict.items():
            if field == "criteria":
                self.criteria_errors.extend(messages)
            else:
                self.add_error(
                    field if field in self.fields and field != NON_FIELD_ERRORS else None,
                    messages,
                )

    # The template writes radios and checkboxes from these plain dicts instead of rendering a
    # widget template per option: the panel is rendered on every submit, and per-option widget
    # templates were a quarter of a submit's CPU time.
    def options(self, name: str) -> list[dict]:
        value = self[name].value()
        is_criterion = name.startswith("criterion_")
        if is_criterion and value is None:
            value = SAME_AS_OVERALL
        selected = {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}
        keys = CRITERION_KEYS if is_criterion else SHORTCUT_KEYS
        return [
            {
                "value": v,
                "label": label,
                "key": keys.get(v, ""),
                "checked": v in selected,
            }
            for v, label in self.option_labels[name]
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
             "options": self.options(key), "help": self.criteria_help.get(name, ""),
             "key": CRITERION_REACH_KEYS[i]}
            for i, (key, name) in enumerate(self.criteria)
        ]  # fmt: skip


def ordinal(n: int) -> str:
    return f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}"


class RankingForm(JudgmentForm):
    """The ranking page's form, in screen terms: `rank_<n>` is the place given to the n-th
    response shown (1 is best; equal places tie), plus the rationale and flags of the pairwise
    form. Without JavaScript the rater picks the places; static/js/rank.js fills them in from
    the keyboard or drag-and-drop. `answer()` maps them to canonical tiers for submit_ranking."""

    def __init__(self, *args, project: Project, count: int, **kwargs):
        super().__init__(*args, project=project, **kwargs)
        for name in ("choice", "strength"):
            self.fields.pop(name, None)
        for key, _ in self.criteria:
            del self.fields[key]
        self.criteria = []
        self.count = count
        self.unranked: list[int] = []
        self.ranking_errors: list[str] = []
        for n in range(1, count + 1):
            self.fields[f"rank_{n}"] = forms.CharField(required=False)

    def answer(self, assignment: Assignment) -> dict:
        """The post as submit_ranking takes it (call after is_valid); `unranked` lists the
        shown responses without a valid place."""
        data = self.cleaned_data
        shown = assignment.display_order
        places: dict[str, int] = {}
        self.unranked = []
        for n, key in enumerate(shown, start=1):
            value = data.get(f"rank_{n}", "")
            if value.isdigit() and 1 <= int(value) <= len(shown):
                places[key] = int(value)
            else:
                self.unranked.append(n)
        return {
            "ranking": tiers_from_ranks(places) if places else [],
            "rationale": data.get("rationale", ""),
            "flags": data.get("flags", []),
        }

    def add_answer_errors(self, exc: ValidationError) -> None:
        messages = exc.message_dict.copy()
        if "ranking" in messages and self.unranked:
            # The queue names canonical keys the rater never saw: say it in screen terms.
            names = ", ".join(f"Response {n}" for n in self.unranked)
            messages["ranking"] = [f"Give every response a place ({names}: none yet)."]
        self.ranking_errors = messages.pop("ranking", [])
        if messages:
            super().add_answer_errors(ValidationError(messages))

    def rank_options(self) -> list[dict]:
        return [{"value": str(n), "label": ordinal(n)} for n in range(1, self.count + 1)]

    def rank_value(self, n: int) -> str:
        return str(self[f"rank_{n}"].value() or "")
