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
    found = reuse.find_reuse(
        text="Compared with placebo, CardioZen cut major cardiac events by 24 percent."
    )

    assert found.verdict == "known"
    assert found.match.version.pk == library["efficacy"].pk
    assert found.match.score >= reuse.novelty_threshold()
    assert found.summary() == f"Close to an approved claim ({found.match.percent}% similar)."


def test_a_claim_close_to_no_approved_claim_is_flagged_novel(library):
    found = reuse.find_reuse(
        text="Liver enzymes should be checked every three months during treatment."
    )

    assert found.verdict == "novel"
    assert found.match is not None
    assert found.match.score < reuse.novelty_threshold()


def test_with_no_approved_claims_everything_is_novel(db, embedding_model):
    found = reuse.find_reuse(text="Anything at all")

    assert (found.verdict, found.match, found.matches) == ("novel", None, [])


def test_the_same_claim_with_another_number_is_a_new_claim_not_a_near_duplicate(library):
    found = reuse.find_reuse(
        text="CardioZen reduced major adverse cardiac events by 30% versus placebo."
    )

    assert found.verdict == "numbers_differ"
    assert found.match.version.pk == library["efficacy"].pk
    # The texts embed as near-duplicates, which is exactly why the figures are compared.
    assert found.match.score > 0.8
    assert found.match.new_claim
    assert found.summary() == "New claim: 30% vs approved 24%."
    assert found.matches[0] is found.match


def test_the_list_and_the_verdict_give_one_score(library, author):
    """One score, one definition: the verdict's percent is the list's, for text or version."""
    text_found = reuse.find_reuse(
        text="Fewer heart attacks and strokes\nCardioZen reduced major adverse cardiac "
        "events by 24% versus placebo."
    )
    assert text_found.match is text_found.matches[0]

    draft = factories.make_module(
        author,
        headline="Fewer heart attacks and strokes",
        body="",
        key_message="CardioZen reduced major adverse cardiac events by 24% versus placebo.",
        call_to_action="",
    )
    version_found = reuse.find_reuse(version=draft)
    text_again = reuse.find_reuse(text=draft.embedding_text(), exclude_module_id=draft.module_id)

    assert version_found.match.version.pk == library["efficacy"].pk
    assert [(m.version.pk, m.percent) for m in version_found.matches] == [
        (m.version.pk, m.percent) for m in text_again.matches
    ]
    assert version_found.verdict == text_again.verdict == "known"


def test_an_approved_claim_with_the_same_figures_wins_over_a_closer_one_with_others(
    library, author
):
    thirty = approved_module(
        author,
        "CardioZen reduced major adverse cardiac events by 30% in diabetic patients.",
        headline="Diabetic subgroup",
    )
    embeddings.embed_versions([thirty.pk])

    found = reuse.find_reuse(
        text="CardioZen reduced major adverse cardiac events by 30% versus placebo."
    )

    assert found.verdict == "known"
    assert found.match.version.pk == thirty.pk


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
        headline="Fewer heart attacks",
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


# ---------------------------------------------------------------- as the form calls it


def test_endpoint_takes_the_fields_as_typed_and_flags_other_figures(library, author):
    response = factories.api_client(author).post(
        "/api/v1/modules/similar",
        {
            "headline": "Fewer heart attacks and strokes",
            "body": "",
            "key_message": "CardioZen reduced major adverse cardiac events by 30% versus placebo.",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    top = body["items"][0]
    assert top["module"] == library["efficacy"].module_id
    assert top["new_claim"] is True
    assert top["differences"] == [{"draft": "30%", "approved": "24%"}]
    assert top["percent"] == round(top["similarity"] * 100)
    novelty = body["novelty"]
    assert novelty["verdict"] == "numbers_differ"
    assert novelty["is_novel"] is True
    assert novelty["summary"] == "New claim: 30% vs approved 24%."
    assert novelty["percent"] == top["percent"]


def test_endpoint_with_the_same_figures_reworded_is_a_known_claim(library, author):
    response = factories.api_client(author).post(
        "/api/v1/modules/similar",
        {
            "key_message": (
                "Versus placebo, major adverse cardiac events fell 24 percent on CardioZen."
            )
        },
        format="json",
    )

    body = response.json()
    assert body["novelty"]["verdict"] == "known"
    assert body["items"][0]["new_claim"] is False
    assert body["items"][0]["differences"] == []


def test_endpoint_leaves_out_the_module_being_edited(library, author):
    response = factories.api_client(author).post(
        "/api/v1/modules/similar",
        {"key_message": EFFICACY, "module": library["efficacy"].module_id},
        format="json",
    )

    assert response.status_code == 200
    shown = [item["module"] for item in response.json()["items"]]
    assert library["efficacy"].module_id not in shown
    assert library["dosing"].module_id in shown


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"key_message": "   ", "body": ""}, 400, "key_message"),
        ({"key_message": "x", "text": "y"}, 400, "text"),
        ({"key_message": "x", "module": "abc"}, 400, "module"),
        ({"key_message": "x", "module": 999_999}, 404, "module"),
        ({"version": 1, "module": 1}, 400, "module"),
        ({"body": "x" * 5001}, 400, "body"),
        ({"body": "x" * 3000, "key_message": "y" * 3000}, 400, "body"),
    ],
)
def test_endpoint_rejects_bad_fields_naming_them(db, author, payload, status, field):
    response = factories.api_client(author).post("/api/v1/modules/similar", payload, format="json")

    assert response.status_code == status
    assert field in response.json()["errors"]


def test_new_module_form_has_the_panel_before_anything_is_written(db, author):
    client = Client()
    client.force_login(author)

    html = client.get("/library/new/").content.decode()

    assert 'id="reuse-panel"' in html
    assert 'data-reuse-url="/api/v1/modules/similar"' in html
    assert 'id="reuse-idle"' in html
    assert "js/reuse-finder.js" in html


def test_edit_page_flags_a_draft_whose_figures_differ(library, author):
    draft = factories.make_module(
        author,
        key_message="CardioZen reduced major adverse cardiac events by 30% versus placebo.",
    )
    client = Client()
    client.force_login(author)

    html = client.get(f"/library/modules/{draft.module_id}/edit/").content.decode()

    assert 'data-novelty="numbers_differ"' in html
    assert "30% vs approved 24%" in html
    assert f'data-module="{draft.module_id}"' in html  # the panel leaves its own module out
    assert 'data-new-claim="true"' in html
