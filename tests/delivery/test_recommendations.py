"""POST /api/v1/recommendations: gating, top-k and slots, bad input, cold start, unsubscribes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from content_modules.affinity.learning.scoring import score_versions
from content_modules.affinity.models import HCP
from content_modules.library.models import ModuleVersion, VersionStatus
from tests.factories import api_client

from .helpers import approved, event, in_state, recommend

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


@pytest.fixture
def hcp(db):
    return HCP.objects.create(external_id="HCP-1", specialty="cardiology", segment="digital")


def test_top_k_answers_only_approved_versions_for_channel_brand_and_market(
    author, engine_client, hcp
):
    # Given approved modules in and out of the request's scope, and unapproved ones
    inside = [approved(author) for _ in range(3)]
    approved(author, channels=("web",))  # not on email
    approved(author, brand="neurolift")
    approved(author, market="DE")
    approved(author, expires_on=timezone.localdate() - timedelta(days=1))  # expired yesterday
    for status in (VersionStatus.DRAFT, VersionStatus.IN_REVIEW, VersionStatus.WITHDRAWN):
        in_state(author, status)

    # When the engine asks for the top 10 by email for CardioZen UK
    response = recommend(engine_client, channel="email", brand="cardiozen", market="UK", k=10)

    # Then it gets exactly the three approved modules in scope
    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(i["module"] for i in body["items"]) == sorted(v.module_id for v in inside)
    assert [i["rank"] for i in body["items"]] == [1, 2, 3]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["hcp"] == "HCP-1"
    assert body["recommendation_id"]


def test_item_carries_version_expiry_explanation_and_content(author, engine_client, hcp):
    version = approved(author, title="Fewer events", call_to_action="Read more")
    response = recommend(engine_client, channel="email", k=1)
    item = response.json()["items"][0]
    assert item["module"] == version.module_id
    assert item["version"] == version.number
    assert item["approval_expires_on"] == version.expires_on.isoformat()
    assert set(item["explanation"]) == {
        "message",
        "theme",
        "tonality",
        "format",
        "semantic",
        "baseline",
    }
    assert isinstance(item["drivers"], list)
    assert item["content"] == {
        "title": "Fewer events",
        "headline": version.headline,
        "body": version.body,
        "key_message": version.key_message,
        "call_to_action": "Read more",
        "image_url": None,
        "image_alt": None,
        "tags": {
            "message": "efficacy",
            "theme": ["outcomes"],
            "tonality": "clinical",
            "format": "text",
        },
        "channels": ["email", "web"],
        "brand": "cardiozen",
        "market": "UK",
    }


def test_score_is_the_scoring_functions_probability(author, engine_client, hcp):
    versions = [approved(author) for _ in range(3)]
    other = versions[0]
    event(hcp, other, "delivered", when=timezone.now() - timedelta(days=30))
    event(hcp, other, "clicked", when=timezone.now() - timedelta(days=30))
    expected = {s.version_id: s.probability for s in score_versions(hcp, versions, channel="email")}
    items = recommend(engine_client, channel="email").json()["items"]
    for item in items:
        assert item["score"] == pytest.approx(expected[item["version_id"]], abs=1e-6)


def test_exclude_is_honoured(author, engine_client, hcp):
    a, b = approved(author), approved(author)
    items = recommend(engine_client, exclude=[a.module_id]).json()["items"]
    assert [i["module"] for i in items] == [b.module_id]


def test_slots_answer_the_best_variant_per_slot_in_slot_order_without_repeats(
    author, engine_client, hcp
):
    # Given two efficacy variants, one safety module and one dosing module
    eff = approved(author, message="efficacy")
    approved(author, message="efficacy", variant_of=eff.module)
    safety = approved(author, message="safety")
    approved(author, message="dosing")

    # When asking for safety, efficacy, efficacy, access slots
    body = recommend(
        engine_client, channel="email", slots=["safety", "efficacy", "efficacy", "access"]
    ).json()

    # Then each slot holds a module with that message, in order, never the same module twice
    items = body["items"]
    assert [i["slot"] for i in items] == ["safety", "efficacy", "efficacy"]
    assert [i["content"]["tags"]["message"] for i in items] == ["safety", "efficacy", "efficacy"]
    assert items[0]["module"] == safety.module_id
    assert len({i["module"] for i in items}) == 3
    assert [i["rank"] for i in items] == [1, 2, 3]
    assert body["unfilled_slots"] == ["access"]


def test_slot_picks_the_highest_scoring_variant(author, engine_client, hcp):
    # Given one efficacy variant this HCP clicked and one it ignored, shown as popular to others
    liked = approved(author, message="efficacy")
    other = approved(author, message="efficacy", variant_of=liked.module)
    peers = [HCP.objects.create(external_id=f"P-{i}") for i in range(10)]
    for peer in peers:
        event(peer, liked, "delivered")
        event(peer, liked, "clicked")
        event(peer, other, "delivered")
    items = recommend(engine_client, slots=["efficacy"]).json()["items"]
    assert [i["module"] for i in items] == [liked.module_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"k": "many"}, "k"),
        ({"slots": ["not-a-message"]}, "slots"),
        ({"slots": ["clinical"]}, "slots"),  # a tonality, not a message
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"brand": "nosuchbrand"}, "brand"),
        ({"market": "XX"}, "market"),
        ({"hcp": ""}, "hcp"),
        ({"hcp": "has spaces"}, "hcp"),
        ({"exclude": ["a"]}, "exclude.0"),  # nested fields are dotted
    ],
)
def test_bad_input_answers_400_naming_the_field(author, engine_client, hcp, body, field):
    approved(author)
    before = ModuleVersion.objects.count()
    response = recommend(engine_client, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert ModuleVersion.objects.count() == before
    from content_modules.delivery.models import Recommendation

    assert not Recommendation.objects.exists()


def test_missing_hcp_is_400(engine_client):
    response = engine_client.post("/api/v1/recommendations", {"k": 3}, format="json")
    assert response.status_code == 400
    assert "hcp" in response.json()["errors"]


def test_unknown_hcp_is_answered_from_priors_and_flagged(author, engine_client):
    versions = [approved(author) for _ in range(2)]
    response = recommend(
        engine_client, hcp="NEW-9", context={"specialty": "cardiology", "segment": "digital"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["cold_start"] is True
    assert {i["module"] for i in body["items"]} == {v.module_id for v in versions}
    assert not HCP.objects.filter(external_id="NEW-9").exists()


def test_known_hcp_with_history_is_not_cold(author, engine_client, hcp):
    v = approved(author)
    event(hcp, v, "opened", when=timezone.now() - timedelta(days=40))
    assert recommend(engine_client).json()["cold_start"] is False


def test_hcp_unsubscribed_from_the_channel_gets_no_items_and_the_reason(author, engine_client, hcp):
    v = approved(author)
    event(hcp, v, "unsubscribed", channel="email")
    body = recommend(engine_client, channel="email").json()
    assert body["items"] == []
    assert "unsubscribed" in body["reason"] and "email" in body["reason"]
    # Other channels stay open
    assert len(recommend(engine_client, channel="web").json()["items"]) == 1


def test_hcp_unsubscribed_from_everything_gets_no_items(author, engine_client, hcp):
    v = approved(author)
    event(hcp, v, "unsubscribed", channel="")
    body = recommend(engine_client).json()
    assert body["items"] == [] and "every channel" in body["reason"]


def test_no_candidates_is_an_empty_answer_not_an_error(engine_client, hcp):
    body = recommend(engine_client, channel="email").json()
    assert body["items"] == [] and body["reason"] is None


def test_author_and_reviewer_may_not_ask_for_recommendations(author, medical):
    assert recommend(api_client(author)).status_code == 403
    assert recommend(api_client(medical)).status_code == 403
    assert recommend(api_client(None)).status_code == 401


def test_admin_may_ask_for_recommendations(author, admin_user, hcp):
    approved(author)
    assert recommend(api_client(admin_user)).status_code == 200


def test_image_url_is_absolute(author, engine_client, hcp, settings):
    from io import BytesIO

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from content_modules.library.images import process_image_upload, store_image_asset

    buffer = BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, "PNG")
    upload = SimpleUploadedFile("x.png", buffer.getvalue(), content_type="image/png")
    with transaction.atomic():
        asset = store_image_asset(actor=author, processed=process_image_upload(upload))
    approved(author, image=asset)
    item = recommend(engine_client).json()["items"][0]
    assert item["content"]["image_url"] == f"http://testserver/api/v1/images/{asset.pk}/web"


def test_with_a_trained_model_score_is_its_calibrated_probability_with_explanation(
    author, engine_client
):
    # Given a world with a planted taste and a trained model
    from content_modules.affinity.learning import scoring
    from tests.affinity.test_learning import build_world, train_active

    versions, hcps = build_world(author, n_modules=12, n_hcps=24, deliveries=10)
    scoring.reset_cache()
    model = train_active()
    hcp = hcps[0]
    # When the engine asks for the top 5
    body = recommend(engine_client, hcp=hcp.external_id, k=5).json()
    # Then each score is the model's probability for that version, with its explanation
    expected = {s.version_id: s for s in score_versions(hcp, versions)}
    assert body["model_version"] == model.model_version and body["fallback"] is False
    for item in body["items"]:
        s = expected[item["version_id"]]
        assert item["score"] == pytest.approx(s.probability, abs=1e-6)
        assert item["explanation"] == {
            g: pytest.approx(v, abs=1e-4) for g, v in s.contributions.items()
        }
        assert item["drivers"] == s.drivers
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    scoring.reset_cache()


@pytest.mark.parametrize("value", ["a\x00b", "é", "x" * 30])
def test_values_that_cannot_be_slugs_are_400_not_500(engine_client, hcp, value):
    for field in ("channel", "brand", "market"):
        response = recommend(engine_client, **{field: value})
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["errors"]
    response = recommend(engine_client, slots=[value])
    assert response.status_code == 400 and "slots" in response.json()["errors"]


def test_every_gated_candidate_is_scored_and_the_top_k_are_the_models_best(
    author, engine_client, settings
):
    # Given a trained model and a dozen approved candidates (no frequency cap here:
    # its own tests show capped modules go last)
    settings.DELIVERY_FREQUENCY_CAP_DAYS = 0
    from content_modules.affinity.learning import scoring
    from tests.affinity.test_learning import build_world, train_active

    versions, hcps = build_world(author, n_modules=12, n_hcps=24, deliveries=10)
    scoring.reset_cache()
    train_active()
    expected = {}
    for hcp in hcps[:4]:
        # When the engine asks for the top 5 of each HCP
        items = recommend(engine_client, hcp=hcp.external_id, k=5).json()["items"]
        # Then the items are the five best of all candidates by the full model,
        # with the model's exact scores (the cached group part changes nothing)
        expected = {s.version_id: s.probability for s in score_versions(hcp, versions)}
        best = sorted(expected, key=lambda v: -expected[v])[:5]
        assert [i["version_id"] for i in items] == best
        for item in items:
            assert item["score"] == pytest.approx(expected[item["version_id"]], abs=1e-5)
    scoring.reset_cache()


def test_a_form_or_multipart_body_is_415_and_logs_nothing(engine_client, hcp):
    from content_modules.delivery.models import Recommendation

    fields = {f"exclude.{i}": str(i) for i in range(1500)} | {"hcp": hcp.external_id}
    for body in ({"hcp": hcp.external_id}, fields):
        r = engine_client.post("/api/v1/recommendations", body, format="multipart")
        assert r.status_code == 415, r.content[:300]
    r = engine_client.post(
        "/api/v1/recommendations",
        "hcp=" + hcp.external_id,
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 415
    assert Recommendation.objects.count() == 0
