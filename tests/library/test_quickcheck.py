"""Pre-review checks (library/quickcheck.py): each kind, the brand's blocking flag on the
page and the API, and the findings on the author's module page and the review task page."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from PIL import Image

from content_modules.audit.models import AuditEntry
from content_modules.library.claims import claim_link_create
from content_modules.library.images import process_image_upload, store_image_asset
from content_modules.library.models import (
    Brand,
    BrandPolicy,
    Market,
    ProhibitedPhrase,
    Reference,
    VersionStatus,
)
from content_modules.library.quickcheck import Kind, run_checks
from content_modules.review.models import Review, ReviewTask
from tests import factories
from tests.review.helpers import submit, task_for

pytestmark = pytest.mark.django_db

QUIET = {
    "headline": "A new option for your patients",
    "body": "CardioZen is taken once a day with food.",
    "key_message": "Once-daily CardioZen.",
    "call_to_action": "Ask your representative",
}


def draft(author, **overrides):
    return factories.make_module(author, **{**QUIET, **overrides})


def kinds(version) -> list[str]:
    return [f.kind for f in run_checks(version)]


def brand(slug="cardiozen") -> Brand:
    factories.ensure_vocabulary()
    return Brand.objects.get(slug=slug)


def test_a_quiet_draft_has_no_findings(author):
    assert run_checks(draft(author)) == []


# --- prohibited phrases -----------------------------------------------------------------


def test_prohibited_phrase_matches_whole_words_in_any_case(author):
    ProhibitedPhrase.objects.create(brand=brand(), phrase="safe", reason="a safety claim")
    ProhibitedPhrase.objects.create(brand=brand(), phrase="no side effects")
    version = draft(
        author,
        headline="Safe, and with No  side effects",
        body="Unsafe storage voids it. Safety data are in the SmPC.",
    )

    found = [f for f in run_checks(version) if f.kind == Kind.PROHIBITED_PHRASE]

    assert [(f.field, version.headline[f.start : f.end]) for f in found] == [
        ("headline", "No  side effects"),
        ("headline", "Safe"),
    ]
    safe = found[1]
    assert safe.severity == "error"
    assert safe.message == (
        'The headline says "Safe", which CardioZen content may not say: a safety claim.'
    )


def test_unsafe_and_safety_do_not_match_safe(author):
    ProhibitedPhrase.objects.create(brand=brand(), phrase="safe")
    version = draft(author, body="Unsafe storage voids it. Safety data are in the SmPC.")
    assert kinds(version) == []


def test_market_specific_phrase_applies_only_in_its_market(author):
    ProhibitedPhrase.objects.create(
        brand=brand(), market=Market.objects.get(code="DE"), phrase="cure"
    )
    uk = draft(author, body="Not a cure for heart disease.", market="UK")
    de = draft(author, body="Not a cure for heart disease.", market="DE")

    assert kinds(uk) == []
    [finding] = run_checks(de)
    assert finding.kind == Kind.PROHIBITED_PHRASE
    assert "may not say in DE" in finding.message


def test_another_brands_phrase_does_not_apply(author):
    ProhibitedPhrase.objects.create(brand=brand("neurolift"), phrase="cure")
    assert kinds(draft(author, body="Not a cure.")) == []


# --- fair balance / safety statement ----------------------------------------------------


def test_fair_balance_statement_required_by_the_brand(author):
    BrandPolicy.objects.create(
        brand=brand(),
        requires_safety_statement=True,
        safety_phrases="See the SmPC for side effects\nImportant safety information",
    )
    missing = draft(author)
    present = draft(author, body="CardioZen once a day. Important safety information: bleeding.")

    [finding] = run_checks(missing)
    assert finding.kind == Kind.SAFETY_STATEMENT
    assert finding.field is None
    assert '"Important safety information"' in finding.message
    assert kinds(present) == []


def test_fair_balance_not_required_without_the_policy(author):
    BrandPolicy.objects.create(brand=brand(), requires_safety_statement=False)
    assert kinds(draft(author)) == []


# --- unreferenced claims ----------------------------------------------------------------


def test_unlinked_numeric_claim_is_flagged_and_a_linked_one_is_not(author):
    body = "CardioZen cut hospital stays by 18% in a year."
    version = draft(author, body=body)

    [finding] = run_checks(version)
    assert (finding.kind, finding.field, finding.start, finding.end) == (
        Kind.UNREFERENCED_CLAIM,
        "body",
        0,
        len(body),
    )
    assert finding.message == f'"{body}" states a percentage and no reference supports it.'

    ref = Reference.objects.create(citation="Smith J. Lancet 2025.", created_by=author)
    version.references.add(ref)
    claim_link_create(
        actor=author, version=version, field="body", start=0, end=len(body), reference=ref
    )
    assert kinds(version) == []


# --- numbers that differ from an approved claim -----------------------------------------


APPROVED_CLAIM = "CardioZen reduced major adverse cardiac events by 24% versus placebo."


def test_numbers_differing_from_the_approved_module_it_resembles(author, embedding_model):
    approved = factories.make_module(
        author, key_message=APPROVED_CLAIM, headline="Fewer heart attacks and strokes"
    )
    factories.force_status(approved, VersionStatus.APPROVED)
    changed = factories.make_module(
        author,
        key_message=APPROVED_CLAIM.replace("24%", "30%"),
        headline="Fewer heart attacks and strokes",
    )
    same = factories.make_module(
        author, key_message=APPROVED_CLAIM, headline="Fewer heart attacks and strokes"
    )

    [finding] = [f for f in run_checks(changed) if f.kind == Kind.NUMBERS_DIFFER]
    assert f"approved module {approved.module_id}" in finding.message
    assert "30% vs approved 24%" in finding.message
    assert Kind.NUMBERS_DIFFER not in kinds(same)


# --- alt text ---------------------------------------------------------------------------


def test_image_without_alt_text_is_flagged(author):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (31, 95, 191)).save(buffer, "PNG")
    upload = SimpleUploadedFile("chart.png", buffer.getvalue(), content_type="image/png")
    with transaction.atomic():
        image = store_image_asset(actor=author, processed=process_image_upload(upload))
    without = draft(author, image=image)
    with_alt = draft(author, image=image)
    type(with_alt).objects.filter(pk=with_alt.pk).update(image_alt="A tablet on a hand")
    with_alt.refresh_from_db()

    [finding] = run_checks(without)
    assert (finding.kind, finding.field) == (Kind.MISSING_ALT_TEXT, "image_alt")
    assert kinds(with_alt) == []
    assert kinds(draft(author)) == []  # no image, nothing to describe


# --- pages and API ----------------------------------------------------------------------


@pytest.fixture
def flagged(author):
    ProhibitedPhrase.objects.create(brand=brand(), phrase="cure", reason="no cure claims")
    return draft(author, body="CardioZen is a cure for <b>hearts</b>.")


def test_author_sees_findings_on_the_module_page(client, author, flagged):
    client.force_login(author)
    page = client.get(reverse("library:module_detail", args=[flagged.module_id])).content.decode()

    assert 'id="quickcheck"' in page
    assert "Pre-review checks (1)" in page
    assert "CardioZen content may not say: no cure claims." in page
    assert "None of these blocks submission" in page


def test_reviewer_sees_findings_on_the_task_page(client, author, medical, flagged):
    submit(flagged)  # the brand does not block: findings are shown, not enforced
    client.force_login(medical)
    page = client.get(reverse("review:task", args=[task_for(flagged, "medical").pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Pre-review checks (1)" in text
    assert 'The body says "cure"' in text or "The body says &quot;cure&quot;" in text


def test_api_module_detail_has_a_typed_checks_list(author, flagged):
    response = factories.api_client(author).get(
        reverse("api-module-detail", args=[flagged.module_id])
    )

    assert response.status_code == 200
    [check] = response.json()["checks"]
    body = flagged.body
    assert check == {
        "kind": "prohibited_phrase",
        "severity": "error",
        "message": 'The body says "cure", which CardioZen content may not say: no cure claims.',
        "field": "body",
        "start": body.index("cure"),
        "end": body.index("cure") + 4,
    }


def _block():
    BrandPolicy.objects.update_or_create(brand=brand(), defaults={"checks_block_submission": True})


def test_blocking_brand_refuses_submit_on_the_page_and_writes_nothing(client, author, flagged):
    _block()
    before = AuditEntry.objects.count()
    client.force_login(author)

    response = client.post(reverse("review:module_submit", args=[flagged.module_id]), follow=True)

    text = response.content.decode()
    assert "Not submitted: CardioZen does not accept a submission with pre-review findings" in text
    assert "does not accept a submission until these are resolved" in text
    flagged.refresh_from_db()
    assert flagged.status == VersionStatus.DRAFT and flagged.submitted_at is None
    assert not Review.objects.filter(version=flagged).exists()
    assert not ReviewTask.objects.filter(version=flagged).exists()
    assert AuditEntry.objects.count() == before


def test_blocking_brand_refuses_submit_in_the_api_naming_the_check(author, flagged):
    _block()
    before = AuditEntry.objects.count()

    response = factories.api_client(author).post(
        reverse("api-module-submit", args=[flagged.module_id])
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    [message] = body["errors"]["checks"]
    assert "prohibited_phrase" in message
    flagged.refresh_from_db()
    assert flagged.status == VersionStatus.DRAFT
    assert not Review.objects.filter(version=flagged).exists()
    assert AuditEntry.objects.count() == before


def test_blocking_brand_accepts_a_clean_draft(author):
    _block()
    version = draft(author)
    response = factories.api_client(author).post(
        reverse("api-module-submit", args=[version.module_id])
    )
    assert response.status_code == 200
    assert response.json()["checks"] == []
    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW
