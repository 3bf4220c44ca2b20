"""Forms for the user admin and the invite flow."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, SetPasswordForm, UserChangeForm

from accounts.models import Invite, User
from comparisons.models import Project


def _unique_email(email: str, *, exclude_pk: int | None = None) -> str:
    email = email.strip().lower()
    others = User.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise forms.ValidationError(
            "An account with this e-mail address already exists. To add it to a project, "
            "send an invite: its owner accepts it signed in as themselves."
        )
    return email


class _JoinsProjects(forms.ModelForm):
    """A new account joins the chosen projects as a rater.

    The admin sets `project_choices` (the projects the signed-in user may manage) on a
    subclass per request, and whether one is required.
    """

    project_choices = Project.objects.none()
    projects_required = False

    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The new account rates in these projects.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["projects"].queryset = self.project_choices
        self.fields["projects"].required = self.projects_required

    def _save_m2m(self) -> None:
        super()._save_m2m()
        for project in self.cleaned_data["projects"]:
            project.raters.add(self.instance)


class UserCreationForm(_JoinsProjects, AdminUserCreationForm):
    """A superuser's add-user form: an address, a password or none (set by e-mail), projects."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email",)
        field_classes: dict = {}

    def clean_email(self) -> str:
        return _unique_email(self.cleaned_data["email"])


class LeadUserCreationForm(_JoinsProjects):
    """A lead's add-user form: an address and at least one of their projects, no password.

    The projects put the account in the lead's reach (User.objects.visible_to); the owner
    chooses the password from the set-password e-mail, so a lead never knows it.
    """

    projects_required = True

    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        return _unique_email(self.cleaned_data["email"])

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
            self._save_m2m()
        return user


class UserEditForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"
        field_classes: dict = {}

    def clean_email(self) -> str:
        return _unique_email(self.cleaned_data["email"], exclude_pk=self.instance.pk)


class InviteForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1, max_value=90, initial=14, help_text="The link works for this many days."
    )

    class Meta:
        model = Invite
        fields = ("email", "projects")

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class AcceptInviteForm(SetPasswordForm):
    """Choose a password for a new account; Django's password validators apply."""

    def __init__(self, email: str, *args, **kwargs) -> None:
        # An unsaved user, so the similarity validator can compare the password to the e-mail.
        super().__init__(User(email=email), *args, **kwargs)
        self.fields["new_password1"].label = "Password"
        self.fields["new_password2"].label = "Password (again)"
