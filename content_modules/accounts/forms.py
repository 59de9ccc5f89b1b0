from django import forms
from django.contrib.auth.forms import AuthenticationForm

from content_modules.errors import PermissionDenied

from .models import AuthFailure
from .services import check_credentials


class LockoutAuthenticationForm(AuthenticationForm):
    """The login form, with failed attempts recorded and a lockout after too many."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = check_credentials(
                    username=username,
                    password=password,
                    kind=AuthFailure.Kind.LOGIN,
                    request=self.request,
                )
            except PermissionDenied as exc:
                raise forms.ValidationError(exc.message, code="locked") from exc
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
