"""Claim links in the API: create, list, delete, errors, and on the review task."""

import pytest

from content_modules.audit.models import AuditEntry
from content_modules.library.models import ClaimLink, Reference
from content_modules.library.services import module_edit
from tests.factories import api_client, make_module
from tests.review.helpers import submit, task_for

CLAIM = "CardioZen reduced major cardiac events by 24% versus placebo."
BODY = CLAIM + " Take it with food. Patients had fewer hospital stays."


@pytest.fixture
def ref(author):
    return Reference.objects.create(citation="Smith 2025", doi="10.1056/x1", created_by=author)


@pytest.fixture
def draft(author, ref):
    version = make_module(author, body=BODY, key_message="Once daily.", headline="News")
    return module_edit(actor=author, module=version.module, changes={"references": [ref]})


def link_body(target, ref, **extra):
    return {
        "version": target.number,
        "field": "body",
        "start": 0,
        "end": len(CLAIM),
        "reference": ref.pk,
        "locator": "p. 4",
        **extra,
    }


@pytest.mark.django_db
def test_author_links_a_claim_and_reads_it_back(author, draft, ref):
    client = api_client(author)

    response = client.post(
        f"/api/v1/modules/{draft.module_id}/claim-links",
        link_body(draft, ref, quote=CLAIM),
        format="json",
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["quoted_text"] == CLAIM
    assert data["reference"]["id"] == ref.pk
    assert data["reference"]["doi"] == "10.1056/x1"
    assert data["locator"] == "p. 4"
    assert data["created_by"] == author.username
    assert response["Location"].endswith(f"/api/v1/claim-links/{data['id']}")
    listed = client.get(f"/api/v1/modules/{draft.module_id}/claim-links?version=1").json()
    assert [x["id"] for x in listed] == [data["id"]]
    assert client.get(f"/api/v1/claim-links/{data['id']}").json()["quoted_text"] == CLAIM


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": 5000}, "end"),
        ({"start": -1}, "start"),
        ({"field": "title"}, "field"),
        ({"reference": 999999}, "reference"),
        ({"version": 7}, "version"),
        ({"quote": "something else"}, "quote"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_claim_links_answer_400_naming_the_field(author, draft, ref, change, field):
    response = api_client(author).post(
        f"/api/v1/modules/{draft.module_id}/claim-links",
        link_body(draft, ref, **change),
        format="json",
    )

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not ClaimLink.objects.exists()


@pytest.mark.django_db
def test_a_reference_not_attached_answers_400(author, draft):
    other = Reference.objects.create(citation="Jones 2024", created_by=author)

    response = api_client(author).post(
        f"/api/v1/modules/{draft.module_id}/claim-links", link_body(draft, other), format="json"
    )

    assert response.status_code == 400
    assert "not attached" in response.json()["errors"]["reference"][0]


@pytest.mark.django_db
def test_a_reviewer_links_only_once_the_draft_is_submitted_and_others_never(
    medical, engine, draft, ref
):
    url = f"/api/v1/modules/{draft.module_id}/claim-links"
    response = api_client(medical).post(url, link_body(draft, ref), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert api_client(engine).post(url, link_body(draft, ref), format="json").status_code == 403
    assert not ClaimLink.objects.exists()


@pytest.mark.django_db
def test_delete_removes_the_link_and_audits_it(author, draft, ref):
    client = api_client(author)
    created = client.post(
        f"/api/v1/modules/{draft.module_id}/claim-links", link_body(draft, ref), format="json"
    ).json()

    response = client.delete(f"/api/v1/claim-links/{created['id']}")

    assert response.status_code == 204
    assert not ClaimLink.objects.exists()
    assert AuditEntry.objects.filter(action="claim_link.deleted").count() == 1
    assert client.delete(f"/api/v1/claim-links/{created['id']}").status_code == 404


@pytest.mark.django_db
def test_the_review_task_lists_linked_claims_and_flags_unlinked_ones(author, medical, draft, ref):
    api_client(author).post(
        f"/api/v1/modules/{draft.module_id}/claim-links", link_body(draft, ref), format="json"
    )
    submit(draft)
    task = task_for(draft, "medical")

    data = api_client(medical).get(f"/api/v1/reviews/{task.pk}").json()

    assert [
        (x["quoted_text"], x["reference"]["citation"], x["locator"]) for x in data["claim_links"]
    ] == [(CLAIM, "Smith 2025", "p. 4")]
    assert data["unlinked_claims"] == [
        {
            "field": "body",
            "start": BODY.index("Patients"),
            "end": len(BODY),
            "text": "Patients had fewer hospital stays.",
            "reason": "makes a comparison (“fewer”)",
        }
    ]


@pytest.mark.django_db
def test_the_schema_types_claim_links_and_the_review_task_fields(admin_user):
    schema = api_client(admin_user).get("/api/schema/?format=json").json()

    paths = schema["paths"]
    assert "post" in paths["/api/v1/modules/{id}/claim-links"]
    assert "delete" in paths["/api/v1/claim-links/{id}"]
    body = paths["/api/v1/modules/{id}/claim-links"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]
    task = schema["components"]["schemas"]["ReviewTaskDetail"]["properties"]
    assert task["claim_links"]["items"]["$ref"].endswith("/ClaimLink")
    assert task["unlinked_claims"]["items"]["$ref"].endswith("/UnlinkedClaim")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("doi", "stored"),
    [
        ("10.1056/NEJMoa2034577", "10.1056/NEJMoa2034577"),
        ("https://doi.org/10.1056/NEJMoa2034577", "10.1056/NEJMoa2034577"),
        ("doi:10.1000/xyz", "10.1000/xyz"),
    ],
)
def test_a_reference_keeps_its_doi_normalised(author, doi, stored):
    response = api_client(author).post(
        "/api/v1/references", {"citation": "Smith 2025", "doi": doi}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["doi"] == stored
    assert Reference.objects.get().doi == stored


@pytest.mark.django_db
@pytest.mark.parametrize("doi", ["NEJMoa2034577", "10.1/x", "10.1056/ has space"])
def test_a_bad_doi_answers_400_and_nothing_is_stored(author, doi):
    response = api_client(author).post(
        "/api/v1/references", {"citation": "Smith 2025", "doi": doi}, format="json"
    )

    assert response.status_code == 400
    assert "doi" in response.json()["errors"]
    assert not Reference.objects.exists()
