"""People's sessions end after an idle time (SESSION_IDLE_TIMEOUT_MINUTES)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

TOUCHED = "_idle_touched"
# How often a session in use has its end moved forward: each move is a write.
TOUCH_EVERY_SECONDS = 60


class IdleSessionMiddleware:
    """Move a signed-in session's end (now + SESSION_COOKIE_AGE) forward as it is used.

    Django sets a session's expiry when the session is saved, and the session
    store refuses an expired one on the server. Saving on every request
    (SESSION_SAVE_EVERY_REQUEST) would cost a write per page, so the session is
    marked modified at most once a minute: it ends between 29 and 30 minutes
    (with the default) after its last request. Token requests carry no
    session and are untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.session_key and "_auth_user_id" in session:
            now = timezone.now().timestamp()
            if now - session.get(TOUCHED, 0) >= TOUCH_EVERY_SECONDS:
                session[TOUCHED] = now
        return self.get_response(request)


@receiver(user_logged_in, dispatch_uid="accounts.idle_session_touched_at_login")
def _touched_at_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[TOUCHED] = timezone.now().timestamp()
