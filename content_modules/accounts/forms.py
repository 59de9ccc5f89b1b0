import math

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from content_modules.errors import DomainError

from .models import AuthFailure
from .services import check_credentials
from .throttling import login_throttle_wait


class LockoutAuthenticationForm(AuthenticationForm):
    """The login form, throttled per client, with failures recorded and a lockout."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            wait = login_throttle_wait(self.request)
            if wait is not None:
                raise forms.ValidationError(
                    "Too many sign-in attempts from your address; "
                    f"try again in {math.ceil(wait)} seconds.",
                    code="throttled",
                )
            try:
                self.user_cache = check_credentials(
                    username=username,
                    password=password,
                    kind=AuthFailure.Kind.LOGIN,
                    request=self.request,
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code="locked") from exc
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AdminLockoutAuthenticationForm(LockoutAuthenticationForm, AdminAuthenticationForm):
    """The admin site's login form: the same throttle and lockout, staff only."""
