"""Forms of the reviewer pages: they parse input; the actions in services.py decide."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib.auth import get_user_model

from content_modules.accounts.roles import REVIEW_ROLE_GROUP, ReviewRole
from content_modules.audit.actions import AuditAction
from content_modules.library.models import Brand, Market

from .models import AnnotationField, Decision, TaskStatus


class QueueFilterForm(forms.Form):
    """The queue's filter bar; every field is optional and unknown values are refused."""

    role = forms.ChoiceField(required=False, choices=[("", "Any role"), *ReviewRole.choices])
    brand = forms.ChoiceField(required=False)
    market = forms.ChoiceField(required=False)
    overdue = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), ("true", "Overdue only"), ("false", "Not overdue")],
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Open (mine to act on)"), *TaskStatus.choices],
        label="Status",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["brand"]).choices = [("", "Any brand")] + [
            (b.slug, b.name) for b in Brand.objects.order_by("name")
        ]
        cast(forms.ChoiceField, self.fields["market"]).choices = [("", "Any market")] + [
            (m.code, m.code) for m in Market.objects.order_by("code")
        ]


class DecisionForm(forms.Form):
    """A reviewer's signed decision on one task.

    The password is not required here on purpose: a missing password must
    reach the action, which records it as a failed signature attempt.
    """

    # No initial choice: typing the password and pressing Enter must not approve.
    decision = forms.ChoiceField(
        choices=Decision.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a decision: approve, request changes or reject."},
    )
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when you request changes or reject: say what must change and why.",
    )
    # render_value: a refusal for another field (no decision, no comment) keeps the typed
    # password; the view clears it when the password itself was refused.
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "current-password", "aria-describedby": "signature-statement"},
            render_value=True,
        ),
        label="Your password (electronic signature)",
    )
    checked_references = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, references=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["checked_references"]).choices = [
            (str(r.pk), r.citation) for r in references
        ]


class AnnotationForm(forms.Form):
    """A comment on a span of one field, or a reply to a thread (``parent``)."""

    field = forms.ChoiceField(choices=AnnotationField.choices, required=False)
    start = forms.IntegerField(required=False, min_value=0)
    end = forms.IntegerField(required=False, min_value=0)
    # The selected text as the browser saw it, to catch a page older than the version.
    quote = forms.CharField(required=False, strip=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Comment")
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if not data.get("parent") and not self.errors:
            for name in ("field", "start", "end"):
                if data.get(name) in (None, ""):
                    self.add_error(
                        name, "Select the text to comment on (or give field, start and end)."
                    )
        return data


class ReplyForm(forms.Form):
    """A reply to a comment thread, sent from the module edit page."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=10000)


class WithdrawForm(forms.Form):
    """Pull an approved module from delivery: a reason and an electronic signature."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Give the reason for the withdrawal."},
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}, render_value=True),
    )


class RecallForm(forms.Form):
    """An admin or author closes the open review round early, with a reason (audited)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=5000,
        error_messages={"required": "Give the reason for the recall."},
    )


class ReviewerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class ReassignForm(forms.Form):
    """An admin hands an open task to one reviewer of its role (the action checks eligibility)."""

    assignee = ReviewerChoiceField(queryset=get_user_model().objects.none(), label="Assign to")

    def __init__(self, *args, role: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name=REVIEW_ROLE_GROUP[ReviewRole(role)])
            .order_by("last_name", "first_name", "username")
        )


class DashboardFilterForm(forms.Form):
    """The MLR dashboard's filters: brand, market and a window of whole UTC days."""

    brand = forms.ChoiceField(required=False)
    market = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["brand"]).choices = [("", "Any brand")] + [
            (b.slug, b.name) for b in Brand.objects.order_by("name")
        ]
        cast(forms.ChoiceField, self.fields["market"]).choices = [("", "Any market")] + [
            (m.code, m.code) for m in Market.objects.order_by("code")
        ]

    def clean(self):
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data


class AuditFilterForm(forms.Form):
    """The audit trail's filters: who (a username), which action, and a window of UTC days."""

    user = forms.CharField(required=False, max_length=150, label="User (username)")
    action = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["action"]).choices = [("", "Any action")] + sorted(
            AuditAction.choices, key=lambda c: str(c[1])
        )

    def clean_user(self) -> str:
        username = (self.cleaned_data.get("user") or "").strip()
        if username and not get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError("No user has this username.")
        return username

    def clean(self):
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data
