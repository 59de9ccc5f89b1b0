"""Reference endpoints: register with an optional PDF (real PDFs only), list and search."""

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from content_modules.audit.models import AuditEntry
from content_modules.library.models import Reference
from tests.factories import api_client, pdf_bytes

PDF = pdf_bytes()


def stored_files() -> list[str]:
    root = Path(django_settings.MEDIA_ROOT)
    return [name for _folder, _dirs, names in os.walk(root) for name in names]


@pytest.mark.django_db
def test_author_registers_a_reference_with_json(author):
    response = api_client(author).post(
        "/api/v1/references",
        {"citation": "Smith J et al. NEJM 2025;392:101-10.", "url": "https://doi.org/10.1/x"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    reference = Reference.objects.get(pk=data["id"])
    assert data["citation"] == reference.citation == "Smith J et al. NEJM 2025;392:101-10."
    assert data["url"] == "https://doi.org/10.1/x"
    assert data["pdf_url"] is None
    assert data["created_by"] == author.username
    assert AuditEntry.objects.filter(action="reference.created").count() == 1


@pytest.mark.django_db
def test_author_registers_a_reference_with_a_pdf(author, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("smith2025.pdf", PDF, content_type="application/pdf")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(author).post(
            "/api/v1/references", {"citation": "Smith 2025", "pdf": upload}, format="multipart"
        )

    assert response.status_code == 201, response.json()
    reference = Reference.objects.get(pk=response.json()["id"])
    assert response.json()["pdf_url"] == f"http://testserver/api/v1/references/{reference.pk}/pdf"
    with reference.pdf.open("rb") as stored:
        assert stored.read() == PDF
    assert reference.pdf.name == f"references/{hashlib.sha256(PDF).hexdigest()}.pdf"


@pytest.mark.django_db(transaction=True)
def test_a_reference_whose_transaction_rolls_back_leaves_no_pdf(author):
    # Given a reference registered inside a transaction that then fails
    from django.db import transaction

    from content_modules.library.services import reference_create

    upload = SimpleUploadedFile("smith2025.pdf", PDF, content_type="application/pdf")
    with pytest.raises(RuntimeError), transaction.atomic():
        reference_create(actor=author, citation="Smith 2025", pdf=upload)
        raise RuntimeError("a later step of the same transaction failed")
    # Then neither the row nor its file exists
    assert not Reference.objects.exists()
    assert stored_files() == []
    # And the same registration committed writes both
    upload.seek(0)
    reference = reference_create(actor=author, citation="Smith 2025", pdf=upload)
    assert [Path(reference.pdf.name).name] == stored_files()


@pytest.mark.django_db
def test_medical_reviewer_may_register_a_reference(medical):
    response = api_client(medical).post(
        "/api/v1/references", {"citation": "Label, section 4.8"}, format="json"
    )

    assert response.status_code == 201


@pytest.mark.django_db
def test_a_file_that_is_not_a_pdf_is_400_naming_pdf_and_stores_nothing(author):
    fake = SimpleUploadedFile("study.pdf", b"<html>not a pdf</html>", "application/pdf")

    response = api_client(author).post(
        "/api/v1/references", {"citation": "Fake", "pdf": fake}, format="multipart"
    )

    assert response.status_code == 400
    assert "Not a PDF" in response.json()["errors"]["pdf"][0]
    assert Reference.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_a_pdf_over_the_size_cap_is_413_naming_pdf(author, settings):
    settings.REFERENCE_PDF_MAX_BYTES = 40
    big = SimpleUploadedFile("big.pdf", PDF + b"0" * 100, "application/pdf")

    response = api_client(author).post(
        "/api/v1/references", {"citation": "Big", "pdf": big}, format="multipart"
    )

    assert response.status_code == 413
    assert "limit" in response.json()["errors"]["pdf"][0]
    assert Reference.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "citation"),
        ({"citation": "   "}, "citation"),
        ({"citation": "x", "url": "nope"}, "url"),
    ],
)
def test_bad_reference_is_400_naming_the_field(author, body, field):
    response = api_client(author).post("/api/v1/references", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Reference.objects.count() == 0


@pytest.mark.django_db
def test_empty_pdf_file_is_400(author):
    empty = SimpleUploadedFile("empty.pdf", b"", "application/pdf")

    response = api_client(author).post(
        "/api/v1/references", {"citation": "Empty", "pdf": empty}, format="multipart"
    )

    assert response.status_code == 400
    assert "pdf" in response.json()["errors"]


@pytest.mark.django_db
def test_legal_reviewer_may_not_register_a_reference(legal):
    response = api_client(legal).post("/api/v1/references", {"citation": "x"}, format="json")

    assert response.status_code == 403
    assert Reference.objects.count() == 0


@pytest.mark.django_db
def test_references_list_newest_first_and_search_citations(author, legal):
    older = Reference.objects.create(citation="Jones 2019, Lancet", created_by=author)
    newer = Reference.objects.create(citation="Smith 2025, NEJM", created_by=author)
    client = api_client(legal)

    listed = client.get("/api/v1/references").json()
    searched = client.get("/api/v1/references?q=lancet").json()

    assert [r["id"] for r in listed["results"]] == [newer.pk, older.pk]
    assert [r["id"] for r in searched["results"]] == [older.pk]
