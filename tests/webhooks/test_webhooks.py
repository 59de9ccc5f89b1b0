"""Webhooks: registration, signed deliveries from the outbox, retries, dead letters."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from content_modules.affinity.models import VersionEmbedding
from content_modules.library.models import ModuleVersion
from content_modules.review.services import module_withdraw, versions_expire
from content_modules.webhooks import outbox
from content_modules.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from tests.factories import PASSWORD, api_client, make_module
from tests.review.helpers import approve_all

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"


class Receiver:
    """A real HTTP server in a thread: records what it gets, answers the next status."""

    def __init__(self, statuses=(), port: int = 0) -> None:
        self.statuses = list(statuses)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(r["body"])["event"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def register(admin_user, url, events=("version.approved", "version.withdrawn", "version.expired")):
    response = api_client(admin_user).post(URL, {"url": url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.content
    assert response["Location"].endswith(f"{URL}/{response.json()['id']}")
    return response.json()


# --- registration -----------------------------------------------------------------------


def test_an_admin_registers_lists_and_deletes_a_webhook(admin_user):
    client = api_client(admin_user)
    created = register(admin_user, "https://engine.example.com/hook", ["version.withdrawn"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    listed = client.get(URL).json()
    assert [(h["id"], h["url"], h["events"]) for h in listed] == [
        (created["id"], "https://engine.example.com/hook", ["version.withdrawn"])
    ]
    assert "secret" not in listed[0]
    assert client.delete(f"{URL}/{created['id']}").status_code == 204
    assert client.get(URL).json() == []
    assert client.delete(f"{URL}/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://engine.example.com/x", "events": ["version.approved"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["version.approved"]}, "url"),
        ({"url": "file:///etc/passwd", "events": ["version.approved"]}, "url"),
        ({"url": "https://u:p@engine.example.com/", "events": ["version.approved"]}, "url"),
        ({"url": "https://engine.example.com/", "events": ["version.rejected"]}, "events.0"),
        ({"url": "https://engine.example.com/", "events": []}, "events"),
        ({"events": ["version.approved"]}, "url"),
    ],
)
def test_bad_registrations_are_400_naming_the_field(admin_user, body, field):
    response = api_client(admin_user).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Webhook.objects.exists()


def test_only_admins_manage_webhooks(engine, author):
    for user in (engine, author):
        assert api_client(user).get(URL).status_code == 403
        body = {"url": "https://x.example.com/", "events": ["version.approved"]}
        assert api_client(user).post(URL, body, format="json").status_code == 403
    assert api_client().get(URL).status_code == 401


# --- deliveries -------------------------------------------------------------------------


@pytest.fixture
def approved_version(author, medical, legal, regulatory):
    return approve_all(make_module(author), medical, legal, regulatory)


def test_a_withdrawal_is_delivered_signed(
    admin_user, receiver, approved_version, medical, django_capture_on_commit_callbacks
):
    hook = register(admin_user, receiver.url, ["version.withdrawn"])
    with django_capture_on_commit_callbacks(execute=True):
        module_withdraw(
            actor=medical, module=approved_version.module, reason="Recalled", password=PASSWORD
        )
    assert receiver.events() == ["version.withdrawn"]  # sent on commit (eager task)
    got = receiver.received[0]
    payload = json.loads(got["body"])
    assert payload["data"] == {
        "module": approved_version.module_id,
        "version": approved_version.number,
        "version_id": approved_version.pk,
        "status": "withdrawn",
        "from": "approved",
        "reason": "Recalled",
    }
    signature = got["headers"]["X-Signature"]
    assert outbox.verify(hook["secret"], got["body"], signature)
    assert not outbox.verify("whsec_wrong", got["body"], signature)
    assert not outbox.verify(hook["secret"], got["body"] + b" ", signature)
    # A replayed delivery with an old timestamp is refused by the receiver's check
    assert not outbox.verify(hook["secret"], got["body"], signature, now=time.time() + 301)
    assert got["headers"]["X-Webhook-Delivery"] == payload["id"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1


def test_approval_and_expiry_are_delivered(
    admin_user, receiver, author, medical, legal, regulatory, django_capture_on_commit_callbacks
):
    register(admin_user, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        version = approve_all(make_module(author), medical, legal, regulatory)
    ModuleVersion.objects.filter(pk=version.pk).update(expires_on=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        versions_expire(today=timezone.localdate() + timedelta(days=1))
    assert receiver.events() == ["version.approved", "version.expired"]


def test_a_rolled_back_transaction_sends_nothing(
    admin_user, receiver, approved_version, medical, django_capture_on_commit_callbacks
):
    register(admin_user, receiver.url)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        module_withdraw(
            actor=medical, module=approved_version.module, reason="Oops", password=PASSWORD
        )
        raise RuntimeError("roll back")
    assert callbacks == []
    outbox.sweep()
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_receiver_answering_500_gets_it_on_retry(
    admin_user, approved_version, medical, django_capture_on_commit_callbacks
):
    receiver = Receiver(statuses=[500])
    try:
        register(admin_user, receiver.url, ["version.withdrawn"])
        with django_capture_on_commit_callbacks(execute=True):
            module_withdraw(
                actor=medical, module=approved_version.module, reason="Recalled", password=PASSWORD
            )
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
        assert delivery.last_status_code == 500
        assert delivery.next_attempt_at > timezone.now()  # backing off
        assert outbox.sweep() == 0  # not due yet
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        assert outbox.sweep() == 1
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
        assert len(receiver.received) == 2
        first, second = (json.loads(r["body"]) for r in receiver.received)
        assert first == second  # the same delivery id: the receiver can deduplicate
        assert outbox.sweep() == 0  # delivered: never sent again
    finally:
        receiver.close()


def test_a_receiver_that_is_down_gets_it_once_back_and_failures_end_as_dead_letters(
    admin_user, approved_version, medical, settings, client
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver = Receiver()
    url = receiver.url
    receiver.close()  # down: the port refuses connections
    register(admin_user, url, ["version.withdrawn"])
    module_withdraw(
        actor=medical, module=approved_version.module, reason="Recalled", password=PASSWORD
    )
    outbox.sweep()  # the first attempt (the test's transaction never commits)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and "Connection" in delivery.last_error
    # Back on the same port: the next sweep delivers it
    back = Receiver(port=receiver.port)
    try:
        assert outbox.sweep() == 1
        assert back.events() == ["version.withdrawn"]
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED
    finally:
        back.close()
    # A receiver that never answers: after WEBHOOK_MAX_ATTEMPTS it is a dead letter
    WebhookDelivery.objects.update(status=DeliveryStatus.PENDING, attempts=0)
    for _ in range(3):
        outbox.sweep()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == 3
    assert outbox.sweep() == 0
    client.force_login(admin_user)
    page = client.get("/admin/webhooks/webhookdelivery/?status__exact=dead")
    assert page.status_code == 200
    assert b"Dead letter" in page.content and b"version.withdrawn" in page.content


@pytest.mark.celery_worker
def test_a_withdrawal_reaches_the_receiver_within_seconds_through_a_real_worker(
    live_celery_worker, author, medical, legal, regulatory, admin_user
):
    receiver = Receiver()
    try:
        version = approve_all(make_module(author), medical, legal, regulatory)
        register(admin_user, receiver.url, ["version.withdrawn"])
        # The one worker first embeds the new version (loading the model): let it finish.
        live_celery_worker.wait_for(
            lambda: VersionEmbedding.objects.filter(version=version).exists(), timeout=300
        )
        started = time.monotonic()
        module_withdraw(actor=medical, module=version.module, reason="Recalled", password=PASSWORD)
        live_celery_worker.wait_for(lambda: receiver.received, timeout=10)
        elapsed = time.monotonic() - started
        assert receiver.events() == ["version.withdrawn"]
        assert elapsed < 5, f"took {elapsed:.1f}s"
        live_celery_worker.wait_for(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists(),
            timeout=10,
        )
    finally:
        receiver.close()
