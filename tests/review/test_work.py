"""Landing after sign-in, the author's "my modules", and each round's progress in the queue."""

from __future__ import annotations

import pytest

from content_modules.library.services import module_edit
from content_modules.review.services import annotation_create
from tests.factories import PASSWORD, make_module

from .helpers import decide, send_back, submit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "landing"),
    [
        ("medical", "/review/"),
        ("legal", "/review/"),
        ("admin_user", "/review/"),
        ("author", "/review/mine/"),
        ("engine", "/library/"),
    ],
)
def test_each_role_lands_on_its_work_after_login(client, request, who, landing):
    user = request.getfixturevalue(who)

    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})

    assert response.status_code == 302
    home = client.get(response["Location"])
    assert home.status_code == 302 and home["Location"] == landing


def test_login_with_next_still_goes_where_asked(client, medical):
    response = client.post(
        "/accounts/login/?next=/library/",
        {"username": medical.username, "password": PASSWORD, "next": "/library/"},
    )

    assert response["Location"] == "/library/"


def test_my_modules_groups_by_state_with_comment_counts_and_progress(
    client, author, other_author, medical, legal, regulatory
):
    # Given a draft, a module in review with medical approved, and one sent back by legal
    draft = make_module(author, title="My draft")
    in_review = make_module(author, title="Waiting on legal")
    submit(in_review)
    decide(in_review, "medical", medical)
    back = make_module(author, title="Sent back")
    submit(back)
    annotation_create(
        actor=medical, version=back, field="body", start=0, end=5, text="Cite the source"
    )
    send_back(back, "legal", legal, comment="Soften it", reviewers={"medical": medical})
    make_module(other_author, title="Not mine")
    client.force_login(author)

    response = client.get("/review/mine/")

    html = response.content.decode()
    sections = {s["status"]: s["rows"] for s in response.context["sections"]}
    assert [r["version"].title for r in sections["draft"]] == [draft.title]
    assert [r["version"].title for r in sections["in_review"]] == ["Waiting on legal"]
    assert [r["version"].title for r in sections["changes_requested"]] == ["Sent back"]
    # One text comment and legal's decision comment come back to the author
    assert sections["changes_requested"][0]["comments"] == 2
    assert "2 comments" in html
    progress = {p["role"]: p["words"] for p in sections["in_review"][0]["progress"]}
    assert progress == {"medical": "approved", "legal": "pending", "regulatory": "pending"}
    assert "Not mine" not in html


def test_reviewers_may_not_open_my_modules(client, legal):
    client.force_login(legal)

    assert client.get("/review/mine/").status_code == 403


def test_queue_shows_every_role_on_the_round_and_round_one_of_version_two(
    client, author, medical, legal, regulatory
):
    v1 = make_module(author, title="Second go")
    submit(v1)
    send_back(v1, "regulatory", regulatory, reviewers={"medical": medical, "legal": legal})
    v2 = module_edit(actor=author, module=v1.module, changes={"title": "Second go, fixed"})
    submit(v2)
    decide(v2, "medical", medical)
    client.force_login(legal)

    response = client.get("/review/")

    html = response.content.decode()
    (task,) = list(response.context["page"].object_list)
    assert task.version.number == 2 and task.review.round == 1
    assert 'v2 <span class="muted small">round 1</span>' in html
    assert [(p["role"], p["words"]) for p in task.progress] == [
        ("medical", "approved"),
        ("legal", "pending"),
        ("regulatory", "pending"),
    ]
    assert '<li class="approved" data-role="medical">medical approved</li>' in html
