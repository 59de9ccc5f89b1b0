"""Claim links: the flagging rule, linking a claim to a reference, carrying links on."""

import pytest

from content_modules.audit.models import AuditEntry
from content_modules.errors import Conflict, InvalidInput, PermissionDenied
from content_modules.library.claims import (
    claim_link_create,
    claim_link_delete,
    claim_reason,
    sentences,
    unlinked_claims,
)
from content_modules.library.models import ClaimLink, Reference, VersionStatus
from content_modules.library.services import module_edit
from tests.factories import force_status, make_module

BODY = (
    "CardioZen reduced major cardiac events by 24% versus placebo. "
    "It is taken once a day with food. "
    "Patients had fewer hospital stays."
)
CLAIM = "CardioZen reduced major cardiac events by 24% versus placebo."


def reference(author, citation="Smith J et al. N Engl J Med 2025;392:101-10.") -> Reference:
    return Reference.objects.create(citation=citation, created_by=author)


@pytest.fixture
def draft(author):
    return make_module(
        author,
        headline="A new option for your patients",
        body=BODY,
        key_message="Once-daily CardioZen.",
    )


# --- the flagging rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Events fell by 24% in a year.", "states a percentage"),
        ("Twelve per cent fewer events.", "states a percentage"),
        ("Seen in 1,200 patients.", "states a number"),
        ("It reduced hospital stays.", "makes a comparison (“reduced”)"),
        ("CardioZen versus placebo.", "makes a comparison (“versus”)"),
        ("Patients had fewer strokes.", "makes a comparison (“fewer”)"),
        ("Better tolerated than aspirin.", "makes a comparison (“Better”)"),
    ],
)
def test_sentences_with_numbers_percentages_or_comparatives_are_claims(sentence, reason):
    assert claim_reason(sentence) == reason


@pytest.mark.parametrize(
    "sentence", ["Take it with food.", "Ask your representative.", "A once-daily tablet."]
)
def test_plain_sentences_are_not_claims(sentence):
    assert claim_reason(sentence) is None


def test_sentences_split_at_full_stops_but_not_inside_decimals():
    text = "Events fell by 2.5 points. Take it daily.\nAsk us."

    assert [text[a:b] for a, b in sentences(text)] == [
        "Events fell by 2.5 points.",
        "Take it daily.",
        "Ask us.",
    ]


@pytest.mark.django_db
def test_unlinked_numeric_and_comparative_sentences_are_flagged(draft):
    flagged = [(c.field, c.text) for c in unlinked_claims(draft)]

    assert flagged == [
        ("body", CLAIM),
        ("body", "Patients had fewer hospital stays."),
    ]


@pytest.mark.django_db
def test_a_linked_claim_is_no_longer_flagged(author, draft):
    ref = reference(author)
    draft.references.add(ref)
    start = draft.body.index("reduced")  # a part of the sentence is enough

    claim_link_create(
        actor=author, version=draft, field="body", start=start, end=start + 20, reference=ref
    )

    assert [c.text for c in unlinked_claims(draft)] == ["Patients had fewer hospital stays."]


# --- linking --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_author_links_a_claim_of_their_draft_to_an_attached_reference(author, draft):
    ref = reference(author)
    draft.references.add(ref)

    link = claim_link_create(
        actor=author,
        version=draft,
        field="body",
        start=0,
        end=len(CLAIM),
        reference=ref,
        locator="p. 4, Table 2",
        quote=CLAIM,
    )

    assert (link.quoted_text, link.reference, link.locator) == (CLAIM, ref, "p. 4, Table 2")
    entry = AuditEntry.objects.get(action="claim_link.created")
    assert entry.version_id == draft.pk
    assert entry.data["reference"] == ref.pk
    assert entry.data["quoted_text"] == CLAIM


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "start", "end", "quote", "error_field"),
    [
        ("body", 0, 10_000, "", "end"),
        ("body", 500, 510, "", "start"),
        ("body", 10, 5, "", "end"),
        ("call_to_action", 0, 4, "", "field"),
        ("body", 0, 9, "Not what is there", "quote"),
    ],
)
def test_an_anchor_outside_the_text_is_refused_and_nothing_written(
    author, draft, field, start, end, quote, error_field
):
    ref = reference(author)
    draft.references.add(ref)

    with pytest.raises(InvalidInput) as refused:
        claim_link_create(
            actor=author,
            version=draft,
            field=field,
            start=start,
            end=end,
            reference=ref,
            quote=quote,
        )

    assert refused.value.field == error_field
    assert not ClaimLink.objects.exists()
    assert not AuditEntry.objects.filter(action="claim_link.created").exists()


@pytest.mark.django_db
def test_a_reference_not_attached_to_the_version_is_refused(author, draft):
    with pytest.raises(InvalidInput) as refused:
        claim_link_create(
            actor=author, version=draft, field="body", start=0, end=9, reference=reference(author)
        )

    assert refused.value.field == "reference"
    assert "not attached" in refused.value.message
    assert not ClaimLink.objects.exists()


@pytest.mark.django_db
def test_the_same_claim_and_reference_twice_is_a_conflict(author, draft):
    ref = reference(author)
    draft.references.add(ref)
    claim_link_create(actor=author, version=draft, field="body", start=0, end=9, reference=ref)

    with pytest.raises(Conflict):
        claim_link_create(actor=author, version=draft, field="body", start=0, end=9, reference=ref)

    assert ClaimLink.objects.count() == 1


@pytest.mark.django_db
def test_who_links_depends_on_the_version_state(author, other_author, medical, draft):
    ref = reference(author)
    draft.references.add(ref)
    # A reviewer links claims once the draft is submitted: a state conflict, not a 403.
    with pytest.raises(Conflict):
        claim_link_create(actor=medical, version=draft, field="body", start=0, end=9, reference=ref)
    with pytest.raises(PermissionDenied):
        claim_link_create(
            actor=other_author, version=draft, field="body", start=0, end=9, reference=ref
        )

    force_status(draft, VersionStatus.IN_REVIEW)
    link = claim_link_create(
        actor=medical, version=draft, field="body", start=0, end=9, reference=ref
    )
    assert link.created_by == medical
    with pytest.raises(Conflict):  # the author waits until the review ends
        claim_link_delete(actor=author, link=link)

    force_status(draft, VersionStatus.APPROVED)
    with pytest.raises(Conflict):
        claim_link_delete(actor=medical, link=link)
    assert ClaimLink.objects.filter(pk=link.pk).exists()


@pytest.mark.django_db
def test_deleting_a_link_is_audited(author, draft):
    ref = reference(author)
    draft.references.add(ref)
    link = claim_link_create(
        actor=author, version=draft, field="body", start=0, end=9, reference=ref
    )

    claim_link_delete(actor=author, link=link)

    assert not ClaimLink.objects.exists()
    entry = AuditEntry.objects.get(action="claim_link.deleted")
    assert entry.data["quoted_text"] == "CardioZen"
    assert entry.data["reference"] == ref.pk


# --- carrying links -------------------------------------------------------------------------


@pytest.mark.django_db
def test_links_are_carried_to_the_next_version_when_the_text_still_matches(author, draft):
    ref = reference(author)
    draft.references.add(ref)
    draft.save()
    kept = claim_link_create(
        actor=author, version=draft, field="body", start=0, end=len(CLAIM), reference=ref
    )
    gone_at = BODY.index("Patients had")
    claim_link_create(
        actor=author, version=draft, field="body", start=gone_at, end=len(BODY), reference=ref
    )
    force_status(draft, VersionStatus.APPROVED)

    # The next version moves the claim and rewrites the last sentence.
    new_body = "New data. " + CLAIM + " It is taken once a day with food."
    nxt = module_edit(actor=author, module=draft.module, changes={"body": new_body})

    assert nxt.number == 2
    links = list(nxt.claim_links.all())
    assert [(x.quoted_text, x.start, x.origin_id) for x in links] == [
        (CLAIM, len("New data. "), kept.pk)
    ]
    assert new_body[links[0].start : links[0].end] == CLAIM
    entry = AuditEntry.objects.get(action="claim_links.carried_over")
    assert entry.version_id == nxt.pk
    assert list(entry.data["dropped"].values()) == ["text no longer in the version"]
    # The approved version keeps its own links untouched.
    assert draft.claim_links.count() == 2


@pytest.mark.django_db
def test_editing_a_draft_moves_its_links_and_drops_those_whose_reference_went(author, draft):
    ref, other = reference(author), reference(author, "Jones 2024")
    draft.references.add(ref, other)
    claim_link_create(
        actor=author, version=draft, field="body", start=0, end=len(CLAIM), reference=ref
    )
    claim_link_create(
        actor=author, version=draft, field="body", start=0, end=len(CLAIM), reference=other
    )

    module_edit(
        actor=author,
        module=draft.module,
        changes={"body": "Updated. " + BODY, "references": [ref]},
    )

    links = list(ClaimLink.objects.filter(version=draft))
    assert [(x.reference_id, x.start) for x in links] == [(ref.pk, len("Updated. "))]
    entry = AuditEntry.objects.get(action="claim_links.carried_over")
    assert list(entry.data["dropped"].values()) == ["reference no longer attached"]
