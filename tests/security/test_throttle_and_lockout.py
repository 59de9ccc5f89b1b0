"""Sign-in throttle and lockout (issue 11 points 1 and 5).

The throttle counts per client address (X-Forwarded-For only from our own
proxies), covers the login page, the admin login and the token endpoint, and
lives in the database, so a stopped Redis does not lift it. The lock is per
(username, client), counted before the password check, with a per-username
cap that slows rather than blocks.
"""

from __future__ import annotations

import json
import threading
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from content_modules.accounts import services as account_services
from content_modules.accounts.models import AuthFailure
from content_modules.review.models import ReviewTask
from content_modules.review.services import version_submit
from tests import services
from tests.delivery.redis_support import PrivateRedis
from tests.factories import PASSWORD, api_client, make_module, make_user

TOKEN_URL = "/api/v1/auth/token"


def token_request(username: str, password: str, **extra):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", **extra
    )


def login(username: str, password: str, ip: str = "127.0.0.1", path: str = "/accounts/login/"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(path, {"username": username, "password": password})
    return client, response


# --- point 1: the admin login -----------------------------------------------------------------


def test_thirty_wrong_admin_passwords_then_the_right_one_does_not_log_in(admin_user):
    # Given 30 wrong passwords for a superuser at the admin's own login page
    client = Client()
    for _ in range(30):
        response = client.post(
            "/admin/login/?next=/admin/", {"username": admin_user.username, "password": "guess"}
        )
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    # When the right password comes next
    response = client.post(
        "/admin/login/?next=/admin/", {"username": admin_user.username, "password": PASSWORD}
    )
    # Then it does not log in, and the page says why
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200
    assert "Too many" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_admin_login_locks_out_like_the_login_page_even_when_not_throttled(admin_user, settings):
    settings.LOGIN_THROTTLE_RATE = "1000/min"
    client = Client()
    for _ in range(settings.LOCKOUT_MAX_FAILURES):
        client.post("/admin/login/", {"username": admin_user.username, "password": "guess"})
    response = client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed attempts" in response.content.decode()
    # The same account signs in at once from another address (the lock is per client)
    other, _ = login(admin_user.username, PASSWORD, ip="10.9.9.9", path="/admin/login/")
    assert other.get("/admin/").status_code == 200


def test_admin_login_still_refuses_people_who_are_not_staff(author):
    client, response = login(author.username, PASSWORD, path="/admin/login/")
    assert "_auth_user_id" not in client.session
    assert "staff account" in response.content.decode()


# --- point 5: the throttle --------------------------------------------------------------------


def test_a_rotating_x_forwarded_for_does_not_lift_the_token_throttle(author, settings):
    allowed = int(settings.LOGIN_THROTTLE_RATE.split("/")[0])
    # Given a client that claims another address on every request
    answers = [
        token_request(author.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(allowed + 1)
    ]
    # Then it is throttled all the same: there is no proxy of ours to trust
    assert answers[:allowed] == [200] * allowed
    assert answers[allowed] == 429


def test_behind_a_configured_proxy_each_client_has_its_own_throttle(author, settings):
    settings.NUM_PROXIES = 1
    allowed = int(settings.LOGIN_THROTTLE_RATE.split("/")[0])
    for _ in range(allowed):
        response = token_request(author.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1")
        assert response.status_code == 200
    # The proxy appends the real address; what the client wrote left of it is ignored
    spoofed = token_request(
        author.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.77, 198.51.100.1"
    )
    other = token_request(author.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert spoofed.status_code == 429
    assert other.status_code == 200


def test_the_login_page_is_throttled_per_client(db, settings):
    allowed = int(settings.LOGIN_THROTTLE_RATE.split("/")[0])
    # Given one client trying a different username each time (no lock ever triggers)
    for n in range(allowed):
        _, response = login(f"guess{n}", "guess", ip="192.0.2.10")
        assert "Too many" not in response.content.decode()
    # When it tries once more
    _, response = login("guess-last", "guess", ip="192.0.2.10")
    # Then it is told to wait, and no password was checked for it
    assert "Too many sign-in attempts from your address" in response.content.decode()
    assert AuthFailure.objects.count() == allowed
    # While another client is not held back
    _, response = login("guess-other", "guess", ip="192.0.2.11")
    assert "Too many" not in response.content.decode()


def test_the_throttle_holds_while_redis_is_down(author, settings, tmp_path):
    # Given the cache on a private Redis, which then stops
    redis = PrivateRedis(tmp_path)
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "contentapp.cache.TolerantRedisCache",
            "LOCATION": redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    redis.stop()
    allowed = int(settings.LOGIN_THROTTLE_RATE.split("/")[0])
    # When a client keeps asking for tokens
    answers = [token_request(author.username, PASSWORD).status_code for _ in range(allowed + 1)]
    # Then the throttle still refuses past its rate (it never fails open)
    assert answers[:allowed] == [200] * allowed
    assert answers[allowed] == 429


# --- point 5: the lock ------------------------------------------------------------------------


def test_a_stranger_cannot_lock_a_reviewer_out_of_signing(author, medical, settings):
    settings.LOGIN_THROTTLE_RATE = "1000/min"
    task = version_submit(actor=author, module=make_module(author).module).tasks.get(role="medical")
    # Given a stranger who types the reviewer's username with wrong passwords, many times
    for _ in range(settings.LOCKOUT_MAX_FAILURES + 3):
        token_request(medical.username, "guess", REMOTE_ADDR="198.51.100.66")
    stranger = token_request(medical.username, PASSWORD, REMOTE_ADDR="198.51.100.66")
    assert stranger.status_code == 403 and "Too many failed attempts" in stranger.json()["detail"]
    # When the reviewer signs from their own address
    response = api_client(medical).post(
        f"/api/v1/reviews/{task.pk}/decision",
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    # Then the signature is applied, and the reviewer can still sign in
    assert response.status_code == 200, response.content
    assert ReviewTask.objects.get(pk=task.pk).status == "approved"
    assert token_request(medical.username, PASSWORD).status_code == 200


def test_many_failures_for_one_username_slow_it_down_and_say_so(author, settings, monkeypatch):
    settings.LOGIN_THROTTLE_RATE = "1000/min"
    settings.LOCKOUT_USERNAME_SLOW_AFTER = 3
    settings.LOCKOUT_SLOW_SECONDS = 30
    # Given the author signed in once from their usual address
    assert token_request(author.username, PASSWORD, REMOTE_ADDR="192.0.2.1").status_code == 200
    # And failures for the username came from three addresses, one each
    for n in range(3):
        token_request(author.username, "guess", REMOTE_ADDR=f"198.51.100.{n}")
    # When a fourth address tries, it gets one slow-down slot, and a fifth is told to wait
    first = token_request(author.username, "guess", REMOTE_ADDR="198.51.100.10")
    second = token_request(author.username, PASSWORD, REMOTE_ADDR="198.51.100.11")
    assert "Wrong username or password" in first.json()["detail"]
    assert second.status_code == 403
    assert "slowed to one try every 30 seconds" in second.json()["detail"]
    # Then the owner's usual address is not held back at all
    assert token_request(author.username, PASSWORD, REMOTE_ADDR="192.0.2.1").status_code == 200
    # And the new address gets its try once the slot has passed: slowed, not blocked
    later = account_services.time.time() + 31
    monkeypatch.setattr(account_services, "time", SimpleNamespace(time=lambda: later))
    third = token_request(author.username, PASSWORD, REMOTE_ADDR="198.51.100.11")
    assert third.status_code == 200


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_lone_surrogate_in_the_credentials_is_400_naming_the_field(author, field):
    body = {"username": author.username, "password": PASSWORD, field: "x\ud800"}
    # json.dumps escapes it as \ud800, as a hostile client would send it
    response = APIClient().post(TOKEN_URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and field in response.json()["errors"]


class SlowHasher(PBKDF2PasswordHasher):
    """Slow enough (tens of ms) that parallel password checks overlap."""

    iterations = 200_000


@pytest.mark.django_db(transaction=True)
def test_forty_parallel_wrong_tries_reach_at_most_the_allowed_password_checks(settings):
    services.require_postgres()
    settings.PASSWORD_HASHERS = ["tests.security.test_throttle_and_lockout.SlowHasher"]
    settings.LOGIN_THROTTLE_RATE = "1000/min"
    user = make_user("author", username=f"target-{uuid.uuid4().hex[:6]}")
    # Given 40 wrong tries from one client, all at once
    start = threading.Barrier(40)
    answers: list[str] = []

    def attempt() -> None:
        try:
            start.wait()
            response = token_request(user.username, "guess")
            answers.append(response.json()["detail"])
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then no more than the allowed number of password checks ran
    allowed = settings.LOCKOUT_MAX_FAILURES
    checked = AuthFailure.objects.filter(username=user.username).count()
    assert len(answers) == 40
    assert checked <= allowed, f"{checked} password checks passed a lockout of {allowed}"
    assert sum("Wrong username or password" in a for a in answers) == checked
    assert sum("Too many failed attempts" in a for a in answers) == 40 - checked


pytestmark = pytest.mark.django_db
