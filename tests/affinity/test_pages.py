"""HCP insight pages: the HCP list, one HCP's affinities and timeline, the model page."""

from __future__ import annotations

import re
import uuid

import pytest
from django.utils import timezone

from content_modules.affinity import training_runs
from content_modules.affinity.learning import scoring
from content_modules.affinity.models import HCP, EngagementEvent
from tests.affinity.test_learning import build_world, train_active
from tests.factories import PASSWORD, make_module, make_user, restore_migration_data


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def assert_csp_safe(html: str) -> None:
    """No inline styles or scripts: the CSP would block them."""
    assert ' style="' not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


@pytest.fixture
def world(db, author, embedding_model):
    scoring.reset_cache()
    yield build_world(author, n_hcps=30, deliveries=14)
    scoring.reset_cache()


def test_pages_need_a_login(client, db):
    response = client.get("/affinity/hcps/")
    assert response.status_code == 302
    assert "/accounts/login" in response["Location"]


def test_users_without_a_content_role_are_refused(client, db):
    login(client, make_user(None))
    for url in ("/affinity/hcps/", "/affinity/model/"):
        response = client.get(url)
        assert response.status_code == 403
        assert (
            "HCP insight is for authors, reviewers and administrators" in response.content.decode()
        )


def test_hcp_list_searches_by_id_and_specialty(client, db, medical):
    HCP.objects.create(external_id="HCP-CARD-1", specialty="cardiology", segment="digital")
    HCP.objects.create(external_id="HCP-ONC-1", specialty="oncology", segment="field")
    login(client, medical)
    page = client.get("/affinity/hcps/").content.decode()
    assert "HCP-CARD-1" in page and "HCP-ONC-1" in page
    assert 'href="/affinity/hcps/"' in page  # the nav link
    page = client.get("/affinity/hcps/", {"q": "oncol"}).content.decode()
    assert "HCP-ONC-1" in page and "HCP-CARD-1" not in page
    assert "1 HCP matching" in page
    assert_csp_safe(page)


def test_hcp_page_without_a_model_says_so_and_shows_the_timeline(client, world, author):
    _versions, hcps = world
    hcp = hcps[0]
    login(client, author)
    response = client.get(f"/affinity/hcps/{hcp.external_id}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "No affinity model has been trained yet" in page
    assert page.count('class="timeline-item') == min(hcp.events.count(), 40)
    latest = EngagementEvent.objects.filter(hcp=hcp).order_by("-occurred_at").first()
    assert latest.version.title in page


def test_hcp_page_draws_affinity_bars_per_feature(client, world, author):
    _versions, hcps = world
    train_active()
    cardiologist = next(h for h in hcps if h.specialty == "cardiology")
    login(client, author)
    response = client.get(f"/affinity/hcps/{cardiologist.external_id}/")
    page = response.content.decode()
    assert response.status_code == 200
    for title in ("Message", "Theme", "Tonality", "Format", "Channel"):
        assert f"<h3>{title}</h3>" in page
    # One bar per tonality value, labelled as the vocabulary names it, the
    # preferred tone drawn longest.
    widths = {
        label: int(width)
        for width, label in re.findall(
            r'<rect class="bar[^"]*" x="174" y="4" width="(\d+)"[^>]*><title>([^:]+):', page
        )
    }
    assert widths["Empathetic"] > widths["Clinical"]
    assert widths["Empathetic"] > widths["Urgent"]
    assert "Rep-triggered email" in widths  # the channel bars: labels, not slugs
    assert "rep_email" not in widths
    assert_csp_safe(page)


def test_hcp_pages_show_channel_labels_not_slugs(client, db, author):
    # Given an HCP who prefers rep-triggered email and has one event in that channel
    restore_migration_data()
    hcp = HCP.objects.create(external_id="HCP-LBL-1", preferred_channel="rep_email")
    version = make_module(author)
    EngagementEvent.objects.create(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module=version.module,
        version=version,
        type="opened",
        occurred_at=timezone.now(),
        channel="rep_email",
    )
    login(client, author)
    # When the list and the HCP's page are read, then both say the channel's label
    listing = client.get("/affinity/hcps/").content.decode()
    assert "<td>Rep-triggered email</td>" in listing
    assert "rep_email" not in listing
    detail = client.get("/affinity/hcps/HCP-LBL-1/").content.decode()
    assert "prefers Rep-triggered email" in detail
    assert '<span class="tag">Rep-triggered email</span>' in detail
    assert "rep_email" not in detail


def test_unknown_hcp_page_is_404(client, db, author):
    login(client, author)
    response = client.get("/affinity/hcps/HCP-nobody/")
    assert response.status_code == 404
    assert "No HCP" in response.content.decode()


def test_model_page_charts_metrics_across_versions(client, world, admin_user):
    for _ in range(2):
        stored = train_active()
        training_runs.affinity_model_evaluate(actor=None, model_version=stored.model_version)
    login(client, admin_user)
    response = client.get("/affinity/model/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f"In use: {stored.model_version}" in page
    assert page.count("<polyline") == 4  # model and three baselines, two versions each
    assert page.count("<circle") == 8
    assert page.count('<tr class="active-row">') == 1
    assert_csp_safe(page)


def test_model_page_before_training(client, db, author):
    login(client, author)
    page = client.get("/affinity/model/").content.decode()
    assert "No affinity model has been trained yet" in page
