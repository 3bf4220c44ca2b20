"""Forms for the user admin and the invite flow."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, SetPasswordForm, UserChangeForm

from accounts.models import Invite, User


def _unique_email(email: str, *, exclude_pk: int | None = None) -> str:
    email = email.strip().lower()
    others = User.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise forms.ValidationError("An account with this e-mail address already exists.")
    return email


class UserCreationForm(AdminUserCreationForm):
    """The admin's add-user form: an e-mail address, and a password or none (set by e-mail)."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email",)
        field_classes: dict = {}

    def clean_email(self) -> str:
        return _unique_email(self.cleaned_data["email"])


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
