"""The reuse finder with the real embedding model: similar approved modules and new claims."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from content_modules.affinity import embeddings, reuse
from content_modules.affinity.models import VersionEmbedding
from content_modules.library.models import VersionStatus
from tests import factories

EFFICACY = "CardioZen reduced major adverse cardiac events by 24% versus placebo."
DOSING = "Once-daily dosing with or without food."
SUPPORT = "The patient support programme offers free nurse visits at home."


def approved_module(author, key_message, *, brand="cardiozen", **content):
    version = factories.make_module(author, brand=brand, key_message=key_message, **content)
    factories.force_status(version, VersionStatus.APPROVED)
    return version


@pytest.fixture
def library(db, embedding_model, author):
    """Three approved modules with different claims, plus content that must never show."""
    versions = {
        "efficacy": approved_module(
            author,
            EFFICACY,
            headline="Fewer heart attacks and strokes",
            body="In the pivotal outcomes trial CardioZen lowered cardiac events.",
        ),
        "dosing": approved_module(
            author,
            DOSING,
            headline="One tablet a day",
            body="CardioZen is taken once daily, at any time, with or without meals.",
        ),
        "support": approved_module(
            author,
            SUPPORT,
            headline="Support at home",
            body="Nurses visit patients at home to help them start treatment.",
        ),
    }
    draft = factories.make_module(author, key_message=EFFICACY, headline="Draft efficacy copy")
    expired = factories.make_module(author, key_message=EFFICACY, headline="Expired efficacy")
    factories.force_status(
        expired, VersionStatus.APPROVED, expires_on=timezone.localdate() - timedelta(days=1)
    )
    embeddings.embed_versions([v.pk for v in [*versions.values(), draft, expired]])
    return {**versions, "draft": draft, "expired": expired}


def test_similar_text_ranks_the_matching_approved_module_first(library):
    results = reuse.similar_approved(
        text="CardioZen cut heart attacks and strokes by a quarter compared with placebo.", k=5
    )

    ids = [v.pk for v, _ in results]
    assert ids[0] == library["efficacy"].pk
    assert set(ids) == {library[name].pk for name in ("efficacy", "dosing", "support")}
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1] + 0.1


def test_similar_to_a_version_excludes_its_own_module_and_unapproved_content(library, author):
    new_draft = factories.make_module(
        author,
        key_message="Take one CardioZen tablet a day, with or without meals.",
        headline="Daily dosing made simple",
    )

    results = reuse.similar_approved(version=new_draft, k=2)

    assert [v.pk for v, _ in results][0] == library["dosing"].pk
    assert len(results) == 2

    own = reuse.similar_approved(version=library["efficacy"], k=10)
    shown = {v.pk for v, _ in own}
    assert library["efficacy"].pk not in shown
    assert shown.isdisjoint({library["draft"].pk, library["expired"].pk})


def test_brand_filter_limits_candidates(library, author):
    other_brand = approved_module(author, EFFICACY, brand="neurolift", headline="NeuroLift copy")

    results = reuse.similar_approved(text=EFFICACY, k=10, brand="neurolift")

    assert [v.pk for v, _ in results] == [other_brand.pk]


def test_approved_versions_missing_an_embedding_are_embedded_on_demand(library):
    VersionEmbedding.objects.filter(version=library["support"]).delete()

    results = reuse.similar_approved(text="Free home nursing for patients starting therapy", k=1)

    assert results[0][0].pk == library["support"].pk
    assert VersionEmbedding.objects.filter(version=library["support"]).exists()


def test_a_reworded_approved_claim_is_not_novel(library):
    is_novel, match, similarity = reuse.claim_novelty(
        "Compared with placebo, CardioZen cut major cardiac events by 24 percent."
    )

    assert not is_novel
    assert match.pk == library["efficacy"].pk
    assert similarity >= reuse.novelty_threshold()


def test_a_claim_close_to_no_approved_claim_is_flagged_novel(library):
    is_novel, match, similarity = reuse.claim_novelty(
        "Liver enzymes should be checked every three months during treatment."
    )

    assert is_novel
    assert match is not None
    assert similarity < reuse.novelty_threshold()


def test_with_no_approved_claims_everything_is_novel(db, embedding_model):
    assert reuse.claim_novelty("Anything at all") == (True, None, 0.0)


def test_similar_panel_shows_matches_and_the_novelty_flag(library, author):
    draft = factories.make_module(
        author,
        key_message="Liver enzymes should be checked every three months during treatment.",
        headline="Monitoring on treatment",
    )

    html = render_to_string("affinity/_similar.html", reuse.reuse_context(version=draft))

    assert 'data-novelty="novel"' in html
    assert "New claim" in html
    for name in ("efficacy", "dosing", "support"):
        assert f'data-module="{library[name].module_id}"' in html
    assert f'data-module="{library["draft"].module_id}"' not in html


def test_authoring_form_shows_the_close_approved_claim(library, author):
    draft = factories.make_module(
        author,
        key_message="Compared with placebo, CardioZen cut major cardiac events by 24 percent.",
    )
    client = Client()
    client.force_login(author)

    page = client.get(f"/library/modules/{draft.module_id}/edit/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-novelty="known"' in html
    assert "Close to an approved claim" in html
    assert library["efficacy"].title in html


# ---------------------------------------------------------------- the JSON endpoint


def test_endpoint_answers_similar_modules_and_novelty_for_text(library, author):
    client = factories.api_client(author)

    response = client.post(
        "/api/v1/modules/similar", {"text": "Take one tablet daily, with or without meals.", "k": 2}
    )

    assert response.status_code == 200
    body = response.json()
    assert [item["module"] for item in body["items"]][0] == library["dosing"].module_id
    assert len(body["items"]) == 2
    assert body["items"][0]["key_message"] == DOSING
    assert body["novelty"]["is_novel"] is False
    assert body["novelty"]["module"] == library["dosing"].module_id


def test_endpoint_accepts_a_version_and_reviewers_may_use_it(library, medical):
    response = factories.api_client(medical).post(
        "/api/v1/modules/similar", {"version": library["draft"].pk, "k": 3}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["items"][0]["module"] == library["efficacy"].module_id
    assert body["novelty"]["is_novel"] is False


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({}, 400, "text"),
        ({"text": "x", "version": 1}, 400, "text"),
        ({"text": "x", "k": 0}, 400, "k"),
        ({"text": "x", "k": 500}, 400, "k"),
        ({"version": "abc"}, 400, "version"),
        ({"version": 999_999}, 404, "version"),
        ({"text": "x" * 5001}, 400, "text"),
    ],
)
def test_endpoint_rejects_bad_input_naming_the_field(db, author, payload, status, field):
    response = factories.api_client(author).post("/api/v1/modules/similar", payload)

    assert response.status_code == status
    assert field in response.json()["errors"]


def test_the_engine_may_not_search_the_library(db, engine):
    response = factories.api_client(engine).post("/api/v1/modules/similar", {"text": "x"})
    assert response.status_code == 403
