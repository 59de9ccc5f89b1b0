"""Annotations: comments anchored on a text span, replies, resolving, carry-over."""

import pytest

from content_modules.audit.models import AuditEntry
from content_modules.errors import Conflict, InvalidInput, PermissionDenied
from content_modules.library.services import module_edit
from content_modules.review.models import Annotation
from content_modules.review.services import annotation_create, annotation_resolve
from tests.factories import api_client, make_module

from .helpers import send_back, submit

BODY = "In the pivotal trial, patients on CardioZen had fewer major cardiac events."


@pytest.fixture
def in_review(author):
    version = make_module(author, body=BODY)
    submit(version)
    return version


def _post(user, target, **body):
    body.setdefault("version", target.number)
    return api_client(user).post(
        f"/api/v1/modules/{target.module_id}/annotations", body, format="json"
    )


def test_reviewer_anchors_a_comment_on_a_span(in_review, legal):
    start = BODY.index("fewer major")

    response = _post(legal, in_review, field="body", start=start, end=start + 11, text="Quantify")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["quoted_text"] == "fewer major"
    assert (body["field"], body["start"], body["end"]) == ("body", start, start + 11)
    assert body["author"] == legal.username
    assert AuditEntry.objects.filter(action="annotation.created", version_id=in_review.pk).exists()


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(0, len(BODY) + 1, "end"), (len(BODY), len(BODY) + 3, "start"), (5, 5, "end"), (9, 2, "end")],
)
def test_a_range_outside_the_text_is_400_naming_the_field(in_review, legal, start, end, field):
    response = _post(legal, in_review, field="body", start=start, end=end, text="Out of range")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Annotation.objects.exists()


def test_negative_start_and_unknown_field_are_400(in_review, legal):
    negative = _post(legal, in_review, field="body", start=-1, end=4, text="x")
    unknown = _post(legal, in_review, field="footnote", start=0, end=4, text="x")
    missing = _post(legal, in_review, text="x")

    assert negative.status_code == 400 and "start" in negative.json()["errors"]
    assert unknown.status_code == 400 and "field" in unknown.json()["errors"]
    assert missing.status_code == 400
    assert {"field", "start", "end"} <= set(missing.json()["errors"])


def test_unknown_version_number_is_400(in_review, legal):
    response = _post(legal, in_review, version=7, field="body", start=0, end=2, text="x")
    assert response.status_code == 400 and "version" in response.json()["errors"]


def test_replies_share_the_anchor_of_their_thread(in_review, legal, author):
    root = annotation_create(
        actor=legal, version=in_review, field="title", start=0, end=3, text="Why?"
    )

    response = _post(author, in_review, parent=root.pk, text="Because.")

    assert response.status_code == 201
    reply = Annotation.objects.get(pk=response.json()["id"])
    assert reply.parent == root
    assert (reply.field, reply.start, reply.end) == (root.field, root.start, root.end)
    listed = api_client(legal).get(f"/api/v1/modules/{in_review.module_id}/annotations").json()
    assert [a["id"] for a in listed] == [root.pk, reply.pk]


def test_drafts_are_not_annotated(author, legal):
    draft = make_module(author)
    with pytest.raises(Conflict):
        annotation_create(actor=legal, version=draft, field="body", start=0, end=2, text="x")


def test_engine_may_not_annotate(in_review, engine):
    with pytest.raises(PermissionDenied):
        annotation_create(actor=engine, version=in_review, field="body", start=0, end=2, text="x")


def test_resolving_a_thread(in_review, legal, author):
    root = annotation_create(actor=legal, version=in_review, field="body", start=0, end=2, text="x")

    response = api_client(author).post(f"/api/v1/annotations/{root.pk}/resolve")
    again = api_client(author).post(f"/api/v1/annotations/{root.pk}/resolve")

    assert response.status_code == 200
    assert response.json()["resolved"] is True
    assert response.json()["resolved_by"] == author.username
    assert again.status_code == 409
    assert AuditEntry.objects.filter(action="annotation.resolved").count() == 1


def test_a_stranger_may_not_resolve(in_review, legal, other_author):
    root = annotation_create(actor=legal, version=in_review, field="body", start=0, end=2, text="x")
    with pytest.raises(PermissionDenied):
        annotation_resolve(actor=other_author, annotation=root)


def test_replies_are_not_resolved_on_their_own(in_review, legal, author):
    root = annotation_create(actor=legal, version=in_review, field="body", start=0, end=2, text="x")
    reply = annotation_create(actor=author, version=in_review, parent=root, text="ok")
    with pytest.raises(InvalidInput):
        annotation_resolve(actor=author, annotation=reply)


def test_on_a_new_version_comments_are_reanchored_or_marked_outdated(in_review, author, legal):
    kept_at = BODY.index("CardioZen")
    gone_at = BODY.index("pivotal trial")
    kept = annotation_create(
        actor=legal, version=in_review, field="body", start=kept_at, end=kept_at + 9, text="Name"
    )
    annotation_create(actor=author, version=in_review, parent=kept, text="Brand name is right.")
    gone = annotation_create(
        actor=legal, version=in_review, field="body", start=gone_at, end=gone_at + 13, text="Which?"
    )
    resolved = annotation_create(
        actor=legal, version=in_review, field="title", start=0, end=3, text="ok"
    )
    annotation_resolve(actor=legal, annotation=resolved)
    send_back(in_review, "legal", legal, comment="See comments")
    new_body = "Across two trials, adults on CardioZen had fewer major cardiac events."
    v2 = module_edit(actor=author, module=in_review.module, changes={"body": new_body})

    submit(v2)

    [copy] = Annotation.objects.filter(version=v2, parent__isnull=True)
    assert copy.origin == kept
    assert (copy.start, copy.end) == (new_body.index("CardioZen"), new_body.index("CardioZen") + 9)
    assert new_body[copy.start : copy.end] == "CardioZen"
    assert [r.text for r in copy.replies.all()] == ["Brand name is right."]
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.outdated is True and kept.outdated is False
    assert not Annotation.objects.filter(version=v2, origin=resolved).exists()
    entry = AuditEntry.objects.get(action="annotations.carried_over")
    assert entry.data["outdated"] == [gone.pk]
