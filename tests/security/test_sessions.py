"""People's sessions: an idle timeout, a new session key at login and at signing
(issue 11 point 13)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from content_modules.review.models import ReviewTask
from content_modules.review.services import version_submit
from tests.factories import PASSWORD, make_module

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


class Clock:
    """``timezone.now`` moved forward by hand (sessions expire by the database's clock)."""

    def __init__(self, monkeypatch) -> None:
        self.offset = timedelta()
        real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real() + self.offset)

    def advance(self, minutes: float) -> None:
        self.offset += timedelta(minutes=minutes)


def test_people_s_sessions_time_out_after_thirty_idle_minutes_by_default():
    assert django_settings.SESSION_IDLE_TIMEOUT_MINUTES == 30
    assert django_settings.SESSION_COOKIE_AGE == 30 * 60


def test_a_session_ends_after_the_idle_timeout_but_not_while_in_use(author, monkeypatch):
    clock = Clock(monkeypatch)
    client = logged_in(author)
    # Working every 25 minutes keeps the session, well past 30 minutes in all
    for _ in range(3):
        clock.advance(25)
        assert client.get("/library/").status_code == 200
    # After 31 idle minutes the next page asks for a login again
    clock.advance(31)
    response = client.get("/library/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_logging_in_gives_a_new_session_key(author):
    # Given a session key planted before login (session fixation)
    planted = SessionStore()
    planted["note"] = "planted"
    planted.save()
    client = Client()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = planted.session_key
    # When the user logs in
    client.post("/accounts/login/", {"username": author.username, "password": PASSWORD})
    # Then the session is a new one and the planted key is dead
    assert client.session.session_key != planted.session_key
    assert client.session["_auth_user_id"] == str(author.pk)
    assert not Session.objects.filter(session_key=planted.session_key).exists()


def test_signing_gives_the_session_a_new_key(author, medical):
    task = version_submit(actor=author, module=make_module(author).module).tasks.get(role="medical")
    client = logged_in(medical)
    before = client.session.session_key
    # When the reviewer signs a decision on the page
    response = client.post(
        f"/review/tasks/{task.pk}/decide/", {"decision": "approve", "password": PASSWORD}
    )
    assert response.status_code == 302, response.content
    assert ReviewTask.objects.get(pk=task.pk).status == "approved"
    # Then the browser holds a new session key, still signed in, and the old key is dead
    after = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert client.get("/review/").status_code == 200


def test_a_failed_signature_keeps_the_session_key(author, medical):
    task = version_submit(actor=author, module=make_module(author).module).tasks.get(role="medical")
    client = logged_in(medical)
    before = client.session.session_key
    # (through the API with the session: the page would re-render with the model loaded)
    response = client.post(
        f"/api/v1/reviews/{task.pk}/decision",
        {"decision": "approve", "password": "no"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert client.session.session_key == before
