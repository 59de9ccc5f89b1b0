"""Reference library pages: search, add (DOI, URL, PDF), viewer, inline PDF, claim links."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from content_modules.audit.models import AuditEntry
from content_modules.library.claims import claim_link_create
from content_modules.library.models import ClaimLink, Reference
from content_modules.library.services import module_edit, reference_create
from tests.factories import make_module, make_user, pdf_bytes
from tests.review.helpers import submit, task_for

CLAIM = "CardioZen reduced major cardiac events by 24% versus placebo."
BODY = CLAIM + " Take it with food. Patients had 30% fewer hospital stays."


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pdf_reference(author, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("smith.pdf", pdf_bytes(), content_type="application/pdf")
    with django_capture_on_commit_callbacks(execute=True):
        return reference_create(
            actor=author, citation="Smith J et al. NEJM 2025", doi="10.1056/abc", pdf=upload
        )


@pytest.mark.django_db
def test_the_library_searches_citations_and_dois(author):
    Reference.objects.create(citation="Smith 2025 outcomes", doi="10.1056/abc", created_by=author)
    Reference.objects.create(citation="Jones 2024 <b>safety</b>", created_by=author)

    by_doi = signed_in(author).get("/library/references/?q=1056").content.decode()
    by_text = signed_in(author).get("/library/references/?q=safety").content.decode()

    assert "Smith 2025 outcomes" in by_doi and "Jones 2024" not in by_doi
    assert "Jones 2024 &lt;b&gt;safety&lt;/b&gt;" in by_text and "Smith 2025" not in by_text


@pytest.mark.django_db
def test_author_adds_a_reference_with_a_pdf_and_lands_on_its_viewer(
    author, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("x.pdf", pdf_bytes(), content_type="application/pdf")

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(author).post(
            "/library/references/",
            {"citation": "Smith 2025", "doi": "https://doi.org/10.1056/abc", "pdf": upload},
        )

    reference = Reference.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/library/references/{reference.pk}/"
    assert reference.doi == "10.1056/abc"
    page = signed_in(author).get(response["Location"]).content.decode()
    assert f'src="/library/references/{reference.pk}/pdf/inline/"' in page
    assert "https://doi.org/10.1056/abc" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"citation": "", "doi": ""}, "Give the citation."),
        ({"citation": "Smith", "doi": "NEJM-1"}, "A DOI looks like"),
        ({"citation": "Smith", "url": "javascript:alert(1)"}, "starting with https://"),
    ],
)
def test_bad_references_are_form_errors_and_nothing_is_stored(author, data, message):
    response = signed_in(author).post("/library/references/", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Reference.objects.exists()


@pytest.mark.django_db
def test_a_non_pdf_upload_is_a_form_error(author):
    upload = SimpleUploadedFile("x.pdf", b"<html>hello</html>", content_type="application/pdf")

    response = signed_in(author).post("/library/references/", {"citation": "S", "pdf": upload})

    assert response.status_code == 400
    assert "Not a PDF file" in response.content.decode()
    assert not Reference.objects.exists()


@pytest.mark.django_db
def test_adding_from_a_module_returns_to_its_edit_form_with_the_reference_ticked(author):
    version = make_module(author)

    response = signed_in(author).post(
        "/library/references/", {"citation": "Smith 2025", "module": version.module_id}
    )

    reference = Reference.objects.get()
    assert response["Location"] == (
        f"/library/modules/{version.module_id}/edit/?attach={reference.pk}#field-references"
    )
    form = signed_in(author).get(response["Location"]).content.decode()
    box = re.search(rf'<input type="checkbox" name="references" value="{reference.pk}"[^>]*>', form)
    assert box is not None and "checked" in box.group(0)


@pytest.mark.django_db
def test_the_inline_pdf_keeps_nosniff_and_the_sandbox(author, pdf_reference):
    response = signed_in(author).get(f"/library/references/{pdf_reference.pk}/pdf/inline/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert b"".join(response.streaming_content) == pdf_bytes()


@pytest.mark.django_db
def test_people_without_library_access_get_no_pdf(engine, pdf_reference):
    response = signed_in(engine).get(f"/library/references/{pdf_reference.pk}/pdf/inline/")

    assert response.status_code == 403
    assert not response.has_header("Content-Disposition")


@pytest.mark.django_db
def test_a_reviewer_sees_the_library_but_a_legal_reviewer_may_not_add(legal):
    client = signed_in(legal)

    assert client.get("/library/references/").status_code == 200
    assert 'id="reference-form"' not in client.get("/library/references/").content.decode()
    assert client.post("/library/references/", {"citation": "S"}).status_code == 403
    assert not Reference.objects.exists()


# --- claim links in the pages ---------------------------------------------------------------


@pytest.fixture
def draft(author, pdf_reference):
    version = make_module(author, body=BODY, key_message="Once daily.", headline="News")
    return module_edit(actor=author, module=version.module, changes={"references": [pdf_reference]})


@pytest.mark.django_db
def test_the_edit_page_links_a_selected_claim(author, draft, pdf_reference):
    edit = f"/library/modules/{draft.module_id}/edit/"
    client = signed_in(author)

    response = client.post(
        f"/library/modules/{draft.module_id}/versions/{draft.number}/claim-links/",
        {
            "field": "body",
            "start": 0,
            "end": len(CLAIM),
            "quote": CLAIM,
            "reference": pdf_reference.pk,
            "locator": "p. 4",
            "next": edit,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == edit + "#claims-panel"
    page = client.get(edit).content.decode()
    assert f'<mark class="claim-linked">{CLAIM}</mark>' in page
    assert "Patients had 30% fewer hospital stays." in page.split('id="claim-flags"')[1]
    assert "states a percentage" in page
    assert ClaimLink.objects.get().locator == "p. 4"


@pytest.mark.django_db
def test_a_claim_link_outside_the_text_is_a_400_page_and_nothing_is_written(
    author, draft, pdf_reference
):
    response = signed_in(author).post(
        f"/library/modules/{draft.module_id}/versions/{draft.number}/claim-links/",
        {"field": "body", "start": 0, "end": 9999, "reference": pdf_reference.pk},
    )

    assert response.status_code == 400
    assert "End must be after start and at most" in response.content.decode()
    assert not ClaimLink.objects.exists()


@pytest.mark.django_db
def test_an_unsafe_next_is_ignored(author, draft, pdf_reference):
    response = signed_in(author).post(
        f"/library/modules/{draft.module_id}/versions/{draft.number}/claim-links/",
        {
            "field": "body",
            "start": 0,
            "end": 9,
            "reference": pdf_reference.pk,
            "next": "https://evil.example/",
        },
    )

    assert response["Location"] == f"/library/modules/{draft.module_id}/edit/#claims-panel"


@pytest.mark.django_db
def test_the_medical_review_page_lists_linked_claims_and_flags_the_rest(
    author, medical, draft, pdf_reference
):
    claim_link_create(
        actor=author,
        version=draft,
        field="body",
        start=0,
        end=len(CLAIM),
        reference=pdf_reference,
        locator="Table 2",
    )
    submit(draft)

    page = signed_in(medical).get(f"/review/tasks/{task_for(draft, 'medical').pk}/").content
    html = page.decode()

    linked = html.split('id="claim-links"')[1].split("</ol>")[0]
    assert CLAIM in linked and "Smith J et al. NEJM 2025" in linked and "Table 2" in linked
    flagged = html.split('id="claim-flags"')[1].split("</ul>")[0]
    assert "Patients had 30% fewer hospital stays." in flagged and CLAIM not in flagged
    assert 'id="claim-link-form"' in html  # reviewers link claims on the version they review
    assert "Claims: 1 linked to a reference, 1 flagged without one" in html


@pytest.mark.django_db
def test_claim_link_delete_from_the_page_is_audited(author, draft, pdf_reference):
    link = claim_link_create(
        actor=author, version=draft, field="body", start=0, end=9, reference=pdf_reference
    )

    response = signed_in(author).post(f"/library/claim-links/{link.pk}/delete/")

    assert response.status_code == 302
    assert not ClaimLink.objects.exists()
    assert AuditEntry.objects.filter(action="claim_link.deleted").count() == 1


@pytest.mark.django_db
def test_another_author_cannot_delete_a_link(draft, pdf_reference, author):
    link = claim_link_create(
        actor=author, version=draft, field="body", start=0, end=9, reference=pdf_reference
    )
    stranger = make_user("author")

    response = signed_in(stranger).post(f"/library/claim-links/{link.pk}/delete/")

    assert response.status_code == 403
    assert ClaimLink.objects.filter(pk=link.pk).exists()
