"""Invariant 1 under property tests: delivery serves approved, unexpired versions only.

Whatever mix of states, expiry dates and module histories exists, and
whatever the in-memory catalogue held before, no delivery endpoint answers
anything but a version that is approved now.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_modules.affinity.models import HCP
from content_modules.delivery import catalogue
from content_modules.library.models import Channel, ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.services import module_withdraw, versions_expire
from tests.factories import PASSWORD, api_client, ensure_vocabulary, force_status, make_module
from tests.review.helpers import approve_all

from .helpers import approved, recommend

pytestmark = pytest.mark.django_db

EARLIER = [
    VersionStatus.APPROVED,
    VersionStatus.CHANGES_REQUESTED,
    VersionStatus.REJECTED,
    VersionStatus.SUPERSEDED,
    VersionStatus.EXPIRED,
    VersionStatus.WITHDRAWN,
]
ANY = list(VersionStatus)

module_history = st.tuples(
    st.lists(st.sampled_from(EARLIER), max_size=2),  # earlier versions
    st.sampled_from(ANY),  # the newest version
    st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),  # expiry, days from today
    st.sampled_from(["cardiozen", "neurolift"]),
    st.sampled_from(["email", "web", "rep_visit"]),
)


def build(author, histories) -> None:
    """Modules whose versions went through the given states (at most one approved each)."""
    today = timezone.localdate()
    for earlier, newest, expiry, brand, channel in histories:
        states = list(earlier) + [newest]
        seen_approved = False
        for i, state in enumerate(states):
            if state == VersionStatus.APPROVED:
                if seen_approved:
                    state = VersionStatus.SUPERSEDED
                seen_approved = True
            if i < len(states) - 1 and state in (VersionStatus.DRAFT, VersionStatus.IN_REVIEW):
                state = VersionStatus.REJECTED
            states[i] = state
        version = make_module(
            author, brand=brand, channels=list(Channel.objects.filter(slug=channel))
        )
        for i, state in enumerate(states):
            if i:
                version = module_edit(
                    actor=author,
                    module=version.module,
                    changes={"title": f"v{i + 1}", "expires_on": today + timedelta(days=30)},
                )
            expires_on = today + timedelta(days=expiry) if expiry is not None else None
            force_status(version, state, expires_on=expires_on)


def served_version_ids(client) -> set[int]:
    """Every version id any delivery endpoint answered, across filters and modes."""
    seen: set[int] = set()
    for query in ("", "channel=email", "brand=neurolift", "channel=web&brand=cardiozen"):
        body = client.get(f"/api/v1/content?page_size=500&{query}").json()
        seen |= {r["version_id"] for r in body["results"]}
    for module_id in ModuleVersion.objects.values_list("module_id", flat=True).distinct():
        response = client.get(f"/api/v1/content/{module_id}")
        if response.status_code == 200:
            seen.add(response.json()["version_id"])
        else:
            assert response.status_code == 404
    for body in (
        {"k": 50},
        {"k": 50, "channel": "email", "explore": True},
        {"slots": ["efficacy", "efficacy", "efficacy"], "brand": "cardiozen"},
    ):
        response = recommend(client, **body)
        assert response.status_code == 200, response.content
        seen |= {i["version_id"] for i in response.json()["items"]}
    return seen


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories=st.lists(module_history, min_size=1, max_size=6), warm=st.booleans())
def test_no_endpoint_serves_anything_but_approved_unexpired_versions(
    author, engine, histories, warm
):
    ensure_vocabulary()
    HCP.objects.get_or_create(external_id="HCP-1")
    client = api_client(engine)
    with transaction.atomic():
        if warm:  # a catalogue built before this world existed must not leak into it
            client.get("/api/v1/content")
        build(author, histories)
        truth = set(ModuleVersion.objects.approved_now().values_list("pk", flat=True))
        served = served_version_ids(client)
        # Never anything outside the approved-now set...
        assert served <= truth
        # ...and the listing is complete, so the property is not met by answering nothing.
        listed = client.get("/api/v1/content?page_size=500").json()["results"]
        assert {r["version_id"] for r in listed} == truth
        transaction.set_rollback(True)


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


def _served_modules(client) -> set[int]:
    listed = {r["module"] for r in client.get("/api/v1/content").json()["results"]}
    recommended = {i["module"] for i in recommend(client, k=50).json()["items"]}
    return listed | recommended


def test_withdrawal_between_two_requests_is_never_served_again(
    author, medical, legal, regulatory, engine_client
):
    # Given two modules approved through the real workflow, and a warm catalogue
    HCP.objects.create(external_id="HCP-1")
    keep = approve_all(make_module(author), medical, legal, regulatory)
    pulled = approve_all(make_module(author), medical, legal, regulatory)
    assert _served_modules(engine_client) == {keep.module_id, pulled.module_id}
    # When one is withdrawn
    module_withdraw(actor=medical, module=pulled.module, reason="Claim outdated", password=PASSWORD)
    # Then the very next requests never return it, on any endpoint
    assert _served_modules(engine_client) == {keep.module_id}
    assert engine_client.get(f"/api/v1/content/{pulled.module_id}").status_code == 404


def test_expiry_between_two_requests_needs_no_job_and_no_event(author, engine_client, monkeypatch):
    HCP.objects.create(external_id="HCP-1")
    lasting = approved(author)
    ending = approved(author, expires_on=timezone.localdate())
    assert _served_modules(engine_client) == {lasting.module_id, ending.module_id}
    # The day passes: no expiry job, no signal, the catalogue is not rebuilt
    key = catalogue.current().key
    tomorrow = timezone.localdate() + timedelta(days=1)
    monkeypatch.setattr(catalogue, "today", lambda: tomorrow)
    assert _served_modules(engine_client) == {lasting.module_id}
    assert engine_client.get(f"/api/v1/content/{ending.module_id}").status_code == 404
    assert catalogue.current().key == key


def test_expiry_job_and_new_approval_refresh_the_catalogue(
    author, medical, legal, regulatory, engine_client
):
    HCP.objects.create(external_id="HCP-1")
    first = approve_all(make_module(author), medical, legal, regulatory)
    assert _served_modules(engine_client) == {first.module_id}
    # An edit approved through the workflow supersedes the old version
    draft = module_edit(actor=author, module=first.module, changes={"title": "Second"})
    second = approve_all(draft, medical, legal, regulatory)
    body = engine_client.get(f"/api/v1/content/{first.module_id}").json()
    assert body["version_id"] == second.pk and body["content"]["title"] == "Second"
    # The expiry job (a day late) marks it expired: still never served
    ModuleVersion.objects.filter(pk=second.pk).update(
        expires_on=timezone.localdate() - timedelta(days=1)
    )
    versions_expire()
    assert _served_modules(engine_client) == set()


def test_a_status_change_made_behind_the_actions_back_is_seen_at_once(author, engine_client):
    # Even a raw queryset update (no action, no signal) moves the generation: a trigger does it
    HCP.objects.create(external_id="HCP-1")
    v = approved(author)
    assert _served_modules(engine_client) == {v.module_id}
    ModuleVersion.objects.filter(pk=v.pk).update(status=VersionStatus.WITHDRAWN)
    assert _served_modules(engine_client) == set()
