"""API tokens: obtain with a password, use as Token or Bearer, revoke, throttle, lockout."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from content_modules.accounts.models import ApiToken as Token
from content_modules.accounts.models import AuthFailure
from content_modules.accounts.tokens import hash_key
from content_modules.audit.models import AuditEntry
from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token"


def obtain(username: str, password: str = PASSWORD):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


@pytest.mark.django_db
def test_right_password_answers_a_token_that_is_audited(author):
    response = obtain(author.username)

    assert response.status_code == 200
    assert hash_key(response.json()["token"]) == Token.objects.get(user=author).key_hash
    assert AuditEntry.objects.filter(action="token.issued", actor=author).count() == 1


@pytest.mark.django_db
def test_asking_again_answers_another_token_and_both_work(author, vocabulary):
    first, second = obtain(author.username).json()["token"], obtain(author.username).json()["token"]

    assert first != second
    for key in (first, second):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/api/v1/vocabularies/message").status_code == 200


@pytest.mark.django_db
def test_wrong_password_is_401_and_recorded(author):
    response = obtain(author.username, "not-the-password")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "Wrong username or password" in response.json()["errors"]["non_field_errors"][0]
    assert "token" not in response.json()
    assert not Token.objects.filter(user=author).exists()
    assert AuthFailure.objects.filter(username=author.username, kind="token").count() == 1


@pytest.mark.django_db
def test_unknown_user_is_401_like_a_wrong_password(db):
    response = obtain("nobody-here")

    assert response.status_code == 401
    assert "Wrong username or password" in response.json()["errors"]["non_field_errors"][0]


@pytest.mark.django_db
def test_missing_password_is_400_naming_it(author):
    response = APIClient().post(TOKEN_URL, {"username": author.username}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["errors"]


@pytest.mark.django_db
def test_inactive_user_gets_no_token(author):
    author.is_active = False
    author.save()

    assert obtain(author.username).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("keyword", ["Token", "Bearer", "bearer"])
def test_the_token_works_with_token_and_bearer_keywords(author, vocabulary, keyword):
    key = obtain(author.username).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")

    response = client.get("/api/v1/vocabularies/message")

    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["Token not-a-real-key", "Bearer", "Bearer two parts", "Basic dXNlcjpwdw=="]
)
def test_bad_or_missing_credentials_are_401(vocabulary, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/vocabularies/message")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_delete_revokes_the_token_so_it_no_longer_works(author, vocabulary):
    key = obtain(author.username).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    revoked = client.delete(TOKEN_URL)
    after = client.get("/api/v1/vocabularies/message")

    assert revoked.status_code == 204
    assert after.status_code == 401
    assert not Token.objects.filter(key_hash=hash_key(key)).exists()
    assert AuditEntry.objects.filter(action="token.revoked", actor=author).count() == 1


@pytest.mark.django_db
def test_a_new_token_after_revoking_is_a_different_key(author):
    first = obtain(author.username).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    client.delete(TOKEN_URL)

    second = obtain(author.username).json()["token"]

    assert second != first


@pytest.mark.django_db
def test_revoking_without_a_token_is_401(db):
    assert APIClient().delete(TOKEN_URL).status_code == 401


@pytest.mark.django_db
def test_token_requests_are_throttled_with_429(author):
    allowed = int(settings.LOGIN_THROTTLE_RATE.split("/")[0])

    answers = [obtain(author.username).status_code for _ in range(allowed + 1)]

    assert answers[:allowed] == [200] * allowed
    assert answers[allowed] == 429
    assert "throttled" in obtain(author.username).json()["detail"].lower()


@pytest.mark.django_db
def test_lockout_after_too_many_failures_refuses_even_the_right_password(author, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    for _ in range(3):
        assert obtain(author.username, "wrong").status_code == 401

    # The lock is a refusal whatever the password: 403, not a wrong password's 401.
    response = obtain(author.username)

    assert response.status_code == 403
    assert "Too many failed attempts" in response.json()["errors"]["non_field_errors"][0]
    assert not Token.objects.filter(user=author).exists()


@pytest.mark.django_db
def test_failures_below_the_lockout_are_forgotten_by_the_lock_after_a_success(author, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    obtain(author.username, "wrong")
    obtain(author.username, "wrong")

    assert obtain(author.username).status_code == 200
    assert obtain(author.username, "wrong").status_code == 401
    assert obtain(author.username, "wrong").status_code == 401
    assert obtain(author.username).status_code == 200
    # The log of failures is kept (the admin reads it); only the lock forgets them.
    assert AuthFailure.objects.filter(username=author.username).count() == 4
