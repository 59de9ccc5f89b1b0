"""describe(): every audit action in words, from real workflow entries and odd data alike."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from content_modules.accounts.services import SignatureRefused
from content_modules.audit.actions import AuditAction
from content_modules.audit.describe import DESCRIBERS, action_label, describe, version_numbers
from content_modules.audit.models import AuditEntry
from content_modules.library.services import module_edit
from tests.factories import make_module
from tests.review.helpers import approve_all, decide, send_back, submit


def _entry(action, data=None, *, actor_name="Mia Medical (mia)", version_id=None):
    return SimpleNamespace(action=action, data=data, actor_name=actor_name, version_id=version_id)


def test_every_audit_action_has_its_own_words():
    assert set(DESCRIBERS) == set(AuditAction)


@pytest.mark.parametrize("action", list(AuditAction))
def test_every_action_is_described_even_with_no_data_or_odd_data(action):
    for data in ({}, None, {"version": "two", "role": 3, "changes": "x", "decisions": []}):
        words = describe(_entry(action, data))
        assert isinstance(words, str) and len(words) > 10, (action, data)
        assert "None" not in words and "{" not in words, words


def test_an_unknown_action_falls_back_to_its_stored_name():
    assert describe(_entry("future.thing", {"x": 1})) == "future.thing by Mia Medical (mia)"
    assert action_label("signature.failed") == "Signature failed"


def test_the_signature_reads_as_its_manifestation():
    entry = _entry(
        AuditAction.SIGNATURE_APPLIED,
        {"printed_name": "Mia Medical", "meaning": "approved", "role": "medical", "task": 9},
        version_id=41,
    )

    assert (
        describe(entry, {41: 2})
        == "Version 2 signed by Mia Medical as medical reviewer — signature meaning: approved"
    )


@pytest.mark.django_db
def test_a_review_round_reads_in_words_with_version_numbers(author, medical, legal, regulatory):
    # Given version 1 sent back by legal with a failed signing attempt, then version 2 approved
    v1 = make_module(author)
    submit(v1)
    with pytest.raises(SignatureRefused):
        decide(v1, "medical", medical, password="wrong")
    send_back(v1, "legal", legal, comment="Soften the claim", reviewers={"medical": medical})
    v2 = module_edit(actor=author, module=v1.module, changes={"title": "Softer"})
    approve_all(v2, medical, legal, regulatory)

    entries = list(AuditEntry.objects.filter(module_id=v1.module_id).order_by("seq"))
    words = [describe(e, version_numbers(entries)) for e in entries]

    failed = [w for w, e in zip(words, entries, strict=True) if e.action == "signature.failed"]
    assert failed == [
        f"Failed signing attempt by Mia Medical ({medical.username}) as medical reviewer "
        "to approve version 1 — wrong password"
    ]
    assert (
        f"Leo Legal ({legal.username}) as legal reviewer requested changes to version 1: "
        "“Soften the claim”"
    ) in words
    assert (
        "Version 2 signed by Mia Medical as medical reviewer — signature meaning: approved" in words
    )
    assert any(
        w.startswith(
            f"Version 2 submitted for MLR review by Ada Author ({author.username}) (round 1)"
        )
        for w in words
    )
    assert any(w.startswith("Version 2 approved: every required role signed") for w in words)
    assert any(w.startswith("Version 1 sent back with changes requested") for w in words)
