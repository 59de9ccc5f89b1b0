"""Issue 12 points 8-9: comments snap to words; authors reply and mark them addressed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from content_modules.audit.models import AuditEntry
from content_modules.errors import Conflict, InvalidInput, PermissionDenied
from content_modules.library.services import module_edit
from content_modules.review.models import Annotation
from content_modules.review.pages import snap_to_words
from content_modules.review.services import (
    annotation_address,
    annotation_create,
    annotation_resolve,
)
from tests.factories import api_client, make_module

from .helpers import send_back, submit, task_for

BODY = "In the pivotal trial, patients on CardioZen had fewer major cardiac events."


@pytest.fixture
def in_review(author):
    version = make_module(author, body=BODY)
    submit(version)
    return version


@pytest.fixture
def comment(in_review, legal):
    at = BODY.index("fewer major")
    return annotation_create(
        actor=legal, version=in_review, field="body", start=at, end=at + 11, text="Quantify."
    )


def _address(user, annotation, body=None):
    return api_client(user).post(
        f"/api/v1/annotations/{annotation.pk}/address", body or {}, format="json"
    )


# --- snapping a selection to whole words ----------------------------------------------------


@pytest.mark.parametrize(
    ("selected", "snapped"),
    [
        ("ewer major cardi", "fewer major cardiac"),
        (" fewer ", "fewer"),
        ("Zen", "CardioZen"),
        ("pivotal trial,", "pivotal trial,"),
        ("events.", "events."),
    ],
)
def test_a_selection_snaps_to_the_whole_words_it_touches(selected, snapped):
    start = BODY.index(selected)

    a, b = snap_to_words(BODY, start, start + len(selected))

    assert BODY[a:b] == snapped


def test_snapping_leaves_offsets_outside_the_text_for_the_action_to_refuse():
    assert snap_to_words(BODY, 5, len(BODY) + 4) == (5, len(BODY) + 4)
    assert snap_to_words(BODY, 9, 2) == (9, 2)


def test_the_page_form_saves_a_partial_word_selection_as_whole_words(client, in_review, legal):
    start = BODY.index("ewer major cardi")
    task = task_for(in_review, "legal")
    client.force_login(legal)

    response = client.post(
        reverse("review:annotation_create", args=[task.pk]),
        {
            "field": "body",
            "start": start,
            "end": start + 16,
            "quote": "ewer major cardi",
            "text": "Quantify.",
        },
    )

    assert response.status_code == 302
    saved = Annotation.objects.get()
    assert saved.quoted_text == "fewer major cardiac"
    assert BODY[saved.start : saved.end] == "fewer major cardiac"


# --- marking a comment addressed --------------------------------------------------------------


def test_the_author_marks_a_comment_addressed_and_takes_it_back(comment, author):
    marked = _address(author, comment)
    again = _address(author, comment, {"addressed": True})
    unmarked = _address(author, comment, {"addressed": False})

    assert marked.status_code == 200, marked.content
    body = marked.json()
    assert (body["addressed"], body["addressed_by"]) == (True, author.username)
    assert body["addressed_at"]
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert "addressed" in again.json()["errors"]
    assert unmarked.status_code == 200
    assert (unmarked.json()["addressed"], unmarked.json()["addressed_by"]) == (False, None)
    actions = list(
        AuditEntry.objects.filter(object_type="review.annotation", object_id=str(comment.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["annotation.created", "annotation.addressed", "annotation.reopened"]
    entry = AuditEntry.objects.get(action="annotation.addressed")
    assert entry.actor == author and entry.data["quoted_text"] == "fewer major"


@pytest.mark.parametrize("who", ["legal", "other_author", "medical"])
def test_only_the_modules_authors_mark_a_comment_addressed(comment, who, request):
    user = request.getfixturevalue(who)

    response = _address(user, comment)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    comment.refresh_from_db()
    assert comment.addressed is False and comment.addressed_by is None
    assert not AuditEntry.objects.filter(action="annotation.addressed").exists()


def test_addressed_takes_a_boolean_and_names_the_field(comment, author):
    response = _address(author, comment, {"addressed": "perhaps"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "addressed" in response.json()["errors"]
    comment.refresh_from_db()
    assert comment.addressed is False


def test_a_reply_or_a_resolved_thread_is_not_marked_addressed(comment, author, legal):
    reply = annotation_create(actor=author, version=comment.version, parent=comment, text="Done.")
    with pytest.raises(InvalidInput):
        annotation_address(actor=author, annotation=reply)
    annotation_resolve(actor=legal, annotation=comment)
    with pytest.raises(Conflict):
        annotation_address(actor=author, annotation=comment)
    assert not Annotation.objects.filter(addressed=True).exists()


def test_an_unknown_comment_is_404_in_the_one_error_shape(author):
    response = api_client(author).post("/api/v1/annotations/999999/address", {}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- replies ------------------------------------------------------------------------------------


def test_replies_are_audited_as_replies(comment, author, legal):
    response = api_client(author).post(
        f"/api/v1/modules/{comment.version.module_id}/annotations",
        {"parent": comment.pk, "text": "Now 24% fewer events, cited."},
        format="json",
    )
    reviewer = annotation_create(actor=legal, version=comment.version, parent=comment, text="Ok")

    assert response.status_code == 201
    assert response.json()["parent"] == comment.pk
    replied = AuditEntry.objects.filter(action="annotation.replied").order_by("seq")
    assert [(e.actor, e.data["text"]) for e in replied] == [
        (author, "Now 24% fewer events, cited."),
        (legal, "Ok"),
    ]
    assert reviewer.parent == comment


def test_an_author_of_another_module_may_not_reply(comment, other_author):
    response = api_client(other_author).post(
        f"/api/v1/modules/{comment.version.module_id}/annotations",
        {"parent": comment.pk, "text": "Drive-by."},
        format="json",
    )

    assert response.status_code == 403
    assert comment.replies.count() == 0
    assert not AuditEntry.objects.filter(action="annotation.replied").exists()


def test_the_engine_may_not_reply(comment, engine):
    with pytest.raises(PermissionDenied):
        annotation_create(actor=engine, version=comment.version, parent=comment, text="x")


# --- the next version ----------------------------------------------------------------------------


def _next_round(in_review, author, legal, body):
    send_back(in_review, "legal", legal, comment="See the comments.")
    v2 = module_edit(actor=author, module=in_review.module, changes={"body": body})
    return v2


def test_replies_and_the_addressed_mark_travel_to_the_next_version(
    comment, in_review, author, legal
):
    annotation_create(actor=author, version=in_review, parent=comment, text="Reworded.")
    v2 = _next_round(in_review, author, legal, "Patients on CardioZen had fewer major events.")
    annotation_address(actor=author, annotation=comment)

    submit(v2)

    [copy] = Annotation.objects.filter(version=v2, parent__isnull=True)
    assert copy.origin == comment
    assert (copy.addressed, copy.addressed_by) == (True, author)
    assert [r.text for r in copy.replies.all()] == ["Reworded."]


# --- the pages ----------------------------------------------------------------------------------


def test_the_edit_page_lists_every_comment_of_the_last_round(
    client, comment, in_review, author, legal
):
    gone_at = BODY.index("pivotal trial")
    other = annotation_create(
        actor=legal, version=in_review, field="body", start=gone_at, end=gone_at + 13, text="Which?"
    )
    _next_round(
        in_review,
        author,
        legal,
        "In one trial, patients on CardioZen had fewer major cardiac events.",
    )
    client.force_login(author)

    page = client.get(reverse("library:module_edit", args=[in_review.module_id]))

    assert page.status_code == 200
    html = page.content.decode()
    assert (
        "Reviewers&#x27; comments on version 1 (2)" in html
        or "Reviewers' comments on version 1 (2)" in html
    )
    assert f'id="comment-{comment.pk}"' in html and f'id="comment-{other.pk}"' in html
    assert "Quantify." in html and "Which?" in html
    assert html.count("Text changed in your draft") == 1  # "pivotal trial" is gone, the other stays
    assert reverse("review:annotation_reply", args=[comment.pk]) in html
    assert reverse("review:annotation_address", args=[comment.pk]) in html


def test_the_author_replies_and_marks_addressed_from_the_edit_page(
    client, comment, in_review, author, legal
):
    _next_round(in_review, author, legal, BODY)
    client.force_login(author)
    edit = reverse("library:module_edit", args=[in_review.module_id])

    replied = client.post(
        reverse("review:annotation_reply", args=[comment.pk]), {"text": "Now 24%."}
    )
    marked = client.post(
        reverse("review:annotation_address", args=[comment.pk]), {"addressed": "true"}
    )
    page = client.get(edit).content.decode()

    assert replied.status_code == 302 and replied["Location"] == f"{edit}#comment-{comment.pk}"
    assert marked.status_code == 302
    comment.refresh_from_db()
    assert comment.addressed and comment.addressed_by == author
    assert comment.replies.get().text == "Now 24%."
    assert "Now 24%." in page and "Marked addressed by Ada Author" in page
    assert "Mark not addressed" in page


def test_an_empty_reply_from_the_edit_page_is_400_and_writes_nothing(client, comment, author):
    client.force_login(author)

    response = client.post(reverse("review:annotation_reply", args=[comment.pk]), {"text": "  "})

    assert response.status_code == 400
    assert "Write the reply" in response.content.decode()
    assert comment.replies.count() == 0


def test_another_author_is_refused_on_the_edit_page_forms(client, comment, other_author):
    client.force_login(other_author)

    replied = client.post(reverse("review:annotation_reply", args=[comment.pk]), {"text": "Hi"})
    marked = client.post(reverse("review:annotation_address", args=[comment.pk]))

    assert replied.status_code == 403 and marked.status_code == 403
    comment.refresh_from_db()
    assert not comment.addressed and comment.replies.count() == 0


def test_the_reviewer_sees_what_the_new_version_did_to_each_comment(
    client, comment, in_review, author, legal
):
    gone_at = BODY.index("pivotal trial")
    gone = annotation_create(
        actor=legal, version=in_review, field="body", start=gone_at, end=gone_at + 13, text="Which?"
    )
    annotation_create(actor=author, version=in_review, parent=gone, text="Named the trial instead.")
    annotation_address(actor=author, annotation=comment)
    v2 = _next_round(
        in_review,
        author,
        legal,
        "In HEART-2, patients on CardioZen had fewer major cardiac events.",
    )
    submit(v2)
    client.force_login(legal)

    html = client.get(reverse("review:task", args=[task_for(v2, "legal").pk])).content.decode()

    assert (
        "Of 2 open comments from version 1: 1 on text this version changed, 1 marked addressed"
        in html
    )
    assert "Addressed by the author" in html
    assert "Changed by version 2: comments on text that is gone (1)" in html
    assert '<del class="diff-del quoted-old">pivotal trial</del>' in html
    assert "Named the trial instead." in html
    copy = Annotation.objects.get(version=v2, parent__isnull=True)
    assert f'id="margin-{copy.pk}"' in html  # the carried comment sits in the margin
