"""The review API: submit, queue, decisions, reassignment, withdrawal, records, exports."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from content_modules.accounts.models import AuthFailure
from content_modules.audit.models import AuditEntry
from content_modules.library.models import Reference, VersionStatus
from content_modules.review.models import Review, ReviewTask, Signature, TaskStatus
from content_modules.review.policy import decision_policy
from tests.factories import PASSWORD, api_client, make_module, make_user

from .helpers import approve_all, decide, finish_round, submit, task_for


@pytest.fixture
def in_review(author):
    version = make_module(author)
    submit(version)
    return version


def _decision(user, task, **body):
    body.setdefault("password", PASSWORD)
    body.setdefault("decision", "approve")
    return api_client(user).post(f"/api/v1/reviews/{task.pk}/decision", body, format="json")


def test_submit_answers_the_module_in_review_with_its_tasks(author):
    version = make_module(author)

    response = api_client(author).post(f"/api/v1/modules/{version.module_id}/submit")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["version"], body["status"]) == (version.module_id, 1, "in_review")
    assert body["review"] == Review.objects.get(version=version).pk
    assert sorted(t["role"] for t in body["tasks"]) == ["legal", "medical", "regulatory"]
    assert all(t["status"] == "open" and not t["overdue"] for t in body["tasks"])


def test_submit_twice_answers_409(author, in_review):
    response = api_client(author).post(f"/api/v1/modules/{in_review.module_id}/submit")

    assert response.status_code == 409
    assert "status" in response.json()["errors"]


def test_submit_unknown_module_answers_404(author):
    assert api_client(author).post("/api/v1/modules/999999/submit").status_code == 404


def test_engine_may_not_see_review_tasks(engine, in_review):
    assert api_client(engine).get("/api/v1/reviews").status_code == 403


def test_anonymous_gets_401(in_review):
    assert api_client().get("/api/v1/reviews").status_code == 401


def test_my_queue_lists_open_tasks_of_my_role_that_i_may_act_on(in_review, legal, author):
    other = make_module(author)
    submit(other)
    decide(other, "legal", legal)

    response = api_client(legal).get("/api/v1/reviews?mine=true")

    assert response.status_code == 200
    items = response.json()["results"]
    assert [(i["role"], i["version_id"]) for i in items] == [("legal", in_review.pk)]


def test_my_queue_hides_versions_i_wrote(author):
    author.groups.add(*make_user("medical_reviewer").groups.all())
    submit(make_module(author))

    response = api_client(author).get("/api/v1/reviews?mine=true")

    assert response.json()["count"] == 0


def test_queue_lists_overdue_tasks_first(author, legal):
    later = make_module(author)
    submit(later)
    overdue = make_module(author)
    submit(overdue)
    ReviewTask.objects.filter(version=overdue).update(due_at="2020-01-01T00:00:00Z")

    items = api_client(legal).get("/api/v1/reviews?mine=true").json()["results"]

    assert [i["version_id"] for i in items] == [overdue.pk, later.pk]
    assert [i["overdue"] for i in items] == [True, False]
    only_overdue = api_client(legal).get("/api/v1/reviews?overdue=true&role=legal").json()
    assert [i["version_id"] for i in only_overdue["results"]] == [overdue.pk]


def test_queue_filters_by_role_and_status(in_review, legal, medical):
    decide(in_review, "legal", legal)

    client = api_client(medical)
    approved = client.get("/api/v1/reviews?status=approved").json()["results"]
    medical_open = client.get("/api/v1/reviews?role=medical&status=open").json()["results"]

    assert [(i["role"], i["status"]) for i in approved] == [("legal", "approved")]
    assert [(i["role"], i["status"]) for i in medical_open] == [("medical", "open")]


@pytest.mark.parametrize(
    ("query", "field"), [("role=nurse", "role"), ("status=done", "status"), ("module=x", "module")]
)
def test_bad_queue_filters_answer_400_naming_the_field(legal, query, field):
    response = api_client(legal).get(f"/api/v1/reviews?{query}")

    assert response.status_code == 400
    assert field in response.json()["errors"]


def _list_queries(user, n_versions, author):
    for _ in range(n_versions):
        submit(make_module(author))
    client = api_client(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/reviews?page_size=500")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["count"]


def test_review_list_query_count_does_not_grow_with_the_number_of_tasks(author, legal):
    few, count_few = _list_queries(legal, 2, author)
    many, count_many = _list_queries(legal, 40, author)

    assert (count_few, count_many) == (6, 126)
    assert many == few


def test_my_queue_query_count_does_not_grow_with_the_number_of_tasks(author, legal):
    submit(make_module(author))
    client = api_client(legal)
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/reviews?mine=true")
    for _ in range(30):
        submit(make_module(author))
    with CaptureQueriesContext(connection) as large:
        response = client.get("/api/v1/reviews?mine=true&page_size=500")

    assert response.json()["count"] == 31
    assert len(large.captured_queries) == len(small.captured_queries)


def test_task_detail_shows_references_to_check_and_signatures(author, medical, legal):
    ref = Reference.objects.create(citation="Trial A", created_by=author)
    version = make_module(author, references=[ref])
    submit(version)
    decide(version, "legal", legal)

    body = api_client(medical).get(f"/api/v1/reviews/{task_for(version, 'medical').pk}").json()
    legal_body = api_client(medical).get(f"/api/v1/reviews/{task_for(version, 'legal').pk}").json()

    assert body["references"] == [
        {"id": ref.pk, "citation": "Trial A", "url": "", "checked": False}
    ]
    assert body["key_message"] == version.key_message
    assert [s["meaning"] for s in legal_body["signatures"]] == ["approved"]
    assert legal_body["signatures"][0]["printed_name"] == "Leo Legal"


def test_can_decide_agrees_with_the_policy_for_author_reviewers_and_others(
    author, medical, legal, regulatory, admin_user
):
    # Given two versions in review; a reviewer holding both medical and legal has
    # signed one of them as legal, and the medical reviewer co-edited the other
    plain = make_module(author)
    submit(plain)
    edited = make_module(author)
    edited.editors.add(medical)
    submit(edited)
    dual = make_user(username="dana-dual")
    dual.groups.add(*medical.groups.all(), *legal.groups.all())
    decide(plain, "legal", dual)
    users = [author, medical, legal, regulatory, admin_user, dual]
    tasks = list(ReviewTask.objects.filter(version__in=[plain, edited]).order_by("pk"))

    for user in users:
        client = api_client(user)
        listed = {t["id"]: t["can_decide"] for t in client.get("/api/v1/reviews").json()["results"]}
        for task in tasks:
            expected = decision_policy.may_decide(user, task)
            # Then the detail and the list both say what the policy says
            detail = client.get(f"/api/v1/reviews/{task.pk}").json()
            assert detail["can_decide"] is expected, (user.username, task.role, task.version_id)
            assert listed[task.pk] is expected, (user.username, task.role, task.version_id)

    # And the cases people expect hold: the author never, the medical reviewer only on
    # the version they did not edit, nobody on a decided task
    assert not any(decision_policy.may_decide(author, t) for t in tasks)
    assert decision_policy.may_decide(medical, task_for(plain, "medical"))
    assert not decision_policy.may_decide(medical, task_for(edited, "medical"))
    assert not decision_policy.may_decide(legal, task_for(plain, "legal"))
    assert not decision_policy.may_decide(dual, task_for(plain, "medical"))
    assert decision_policy.may_decide(dual, task_for(edited, "medical"))
    assert decision_policy.may_decide(regulatory, task_for(plain, "regulatory"))


def test_can_decide_is_a_boolean_in_the_schema_of_the_task_list_and_detail(author):
    schema = api_client(author).get("/api/schema/?format=json").json()
    for name in ("ReviewTask", "ReviewTaskDetail"):
        field = schema["components"]["schemas"][name]["properties"]["can_decide"]
        assert field["type"] == "boolean" and field["readOnly"] is True
        assert "can_decide" in schema["components"]["schemas"][name]["required"]


def test_decision_approves_and_returns_the_signature(in_review, medical):
    response = _decision(medical, task_for(in_review, "medical"), comment="Fine")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task"]["status"] == "approved"
    assert body["signature"]["meaning"] == "approved"
    assert body["signature"]["printed_name"] == "Mia Medical"
    assert body["signature"]["signed_at"].endswith("Z")
    assert body["signature"]["content_hash"] == in_review.content_hash


@pytest.mark.parametrize("password", ["wrong", None])
def test_decision_with_wrong_or_missing_password_is_403_and_records_only_the_attempt(
    in_review, legal, password
):
    audit_before = AuditEntry.objects.count()
    body = {"decision": "approve"}
    if password is not None:
        body["password"] = password
    response = api_client(legal).post(
        f"/api/v1/reviews/{task_for(in_review, 'legal').pk}/decision", body, format="json"
    )

    assert response.status_code == 403
    assert "password" in response.json()["errors"]
    # The one audit entry is the failed attempt itself (Part 11 §11.300(d))
    assert list(
        AuditEntry.objects.filter(seq__gt=audit_before).values_list("action", flat=True)
    ) == ["signature.failed"]
    assert not Signature.objects.exists()
    assert AuthFailure.objects.filter(user=legal).count() == 1
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_decision_on_a_closed_task_is_409(in_review, legal):
    assert _decision(legal, task_for(in_review, "legal")).status_code == 200

    response = _decision(legal, task_for(in_review, "legal"))

    assert response.status_code == 409
    assert "status" in response.json()["errors"]


def test_decision_on_a_task_of_another_role_is_403(in_review, legal):
    response = _decision(legal, task_for(in_review, "medical"))

    assert response.status_code == 403
    assert task_for(in_review, "medical").status == TaskStatus.OPEN


def test_decision_with_an_unknown_value_is_400_naming_the_field(in_review, legal):
    response = _decision(legal, task_for(in_review, "legal"), decision="yes-please")

    assert response.status_code == 400
    assert "decision" in response.json()["errors"]


def test_medical_approval_without_checked_references_is_400(author, medical):
    ref = Reference.objects.create(citation="Trial A", created_by=author)
    version = make_module(author, references=[ref])
    submit(version)
    task = task_for(version, "medical")

    refused = _decision(medical, task)
    accepted = _decision(medical, task, checked_references=[ref.pk])

    assert refused.status_code == 400
    assert "checked_references" in refused.json()["errors"]
    assert accepted.status_code == 200


def test_request_changes_through_the_api(in_review, legal):
    response = _decision(
        legal, task_for(in_review, "legal"), decision="request_changes", comment="Cite the trial"
    )

    assert response.status_code == 200
    assert response.json()["task"]["status"] == "changes_requested"
    # The other roles still review this round.
    assert response.json()["task"]["version_status"] == VersionStatus.IN_REVIEW
    finish_round(in_review)
    assert in_review.status == VersionStatus.CHANGES_REQUESTED


def test_admin_reassigns_a_task(in_review, admin_user):
    other_legal = make_user("legal_reviewer")
    task = task_for(in_review, "legal")

    response = api_client(admin_user).post(
        f"/api/v1/reviews/{task.pk}/reassign", {"assignee": other_legal.pk}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == other_legal.username
    entry = AuditEntry.objects.get(action="task.reassigned")
    assert entry.data["to"] == other_legal.pk and entry.actor_id == admin_user.pk


def test_only_admins_reassign(in_review, legal):
    task = task_for(in_review, "legal")
    response = api_client(legal).post(
        f"/api/v1/reviews/{task.pk}/reassign", {"assignee": legal.pk}, format="json"
    )
    assert response.status_code == 403


def test_reassign_to_someone_without_the_role_is_400(in_review, admin_user, medical, author):
    task = task_for(in_review, "legal")
    client = api_client(admin_user)

    wrong_role = client.post(
        f"/api/v1/reviews/{task.pk}/reassign", {"assignee": medical.pk}, format="json"
    )
    unknown = client.post(f"/api/v1/reviews/{task.pk}/reassign", {"assignee": 99999})

    assert wrong_role.status_code == 400 and "assignee" in wrong_role.json()["errors"]
    assert unknown.status_code == 400 and "assignee" in unknown.json()["errors"]
    assert task_for(in_review, "legal").assignee is None


def test_reassign_to_the_versions_author_is_400(admin_user):
    writer = make_user("author")
    writer.groups.add(*make_user("legal_reviewer").groups.all())
    version = make_module(writer)
    submit(version)

    response = api_client(admin_user).post(
        f"/api/v1/reviews/{task_for(version, 'legal').pk}/reassign",
        {"assignee": writer.pk},
        format="json",
    )

    assert response.status_code == 400


def test_withdraw_pulls_the_module_from_delivery_at_once(
    author, medical, legal, regulatory, engine
):
    version = approve_all(make_module(author), medical, legal, regulatory)

    response = api_client(regulatory).post(
        f"/api/v1/modules/{version.module_id}/withdraw",
        {"reason": "Safety signal", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["meaning"] == "withdrawn"
    assert response.json()["reason"] == "Safety signal"
    version.refresh_from_db()
    assert version.status == VersionStatus.WITHDRAWN
    assert version.module.approved_version() is None


def test_withdrawing_a_module_that_is_not_approved_is_409(author, in_review, regulatory):
    response = api_client(regulatory).post(
        f"/api/v1/modules/{in_review.module_id}/withdraw",
        {"reason": "Oops", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 409
    assert not Signature.objects.exists()


def test_withdraw_needs_a_reason_and_the_password(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    url = f"/api/v1/modules/{version.module_id}/withdraw"
    client = api_client(regulatory)

    no_reason = client.post(url, {"password": PASSWORD}, format="json")
    bad_password = client.post(url, {"reason": "Safety", "password": "x"}, format="json")

    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    assert bad_password.status_code == 403 and "password" in bad_password.json()["errors"]
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED


def test_authors_and_legal_reviewers_may_not_withdraw(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    for user in (author, legal):
        response = api_client(user).post(
            f"/api/v1/modules/{version.module_id}/withdraw",
            {"reason": "Because", "password": PASSWORD},
            format="json",
        )
        assert response.status_code == 403


def test_signatures_of_a_module_show_their_manifestation(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)

    body = api_client(author).get(f"/api/v1/modules/{version.module_id}/signatures").json()

    assert [(s["role"], s["printed_name"], s["meaning"]) for s in body] == [
        ("medical", "Mia Medical", "approved"),
        ("legal", "Leo Legal", "approved"),
        ("regulatory", "Rita Regulatory", "approved"),
    ]
    assert all(s["content_hash"] == version.content_hash for s in body)
    assert all(s["manifestation"].endswith("UTC, Approved") for s in body)


def test_review_record_json_and_csv(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    client = api_client(legal)

    record = client.get(f"/api/v1/versions/{version.pk}/review-record").json()
    response = client.get(f"/api/v1/versions/{version.pk}/review-record.csv")

    assert record["status"] == "approved"
    assert record["content_hash"] == version.content_hash
    assert [t["status"] for t in record["reviews"][0]["tasks"]] == ["approved"] * 3
    assert all(s["matches_current_content"] for s in record["signatures"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["role"], r["printed_name"], r["meaning"]) for r in rows] == [
        ("medical", "Mia Medical", "approved"),
        ("legal", "Leo Legal", "approved"),
        ("regulatory", "Rita Regulatory", "approved"),
    ]
    assert all(r["signed_at_utc"].endswith("Z") for r in rows)
    assert {r["content_hash"] for r in rows} == {version.content_hash}


def test_audit_csv_exports_are_for_admins(author, admin_user, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    other = make_module(author)

    overall = api_client(admin_user).get("/api/v1/audit.csv")
    per_module = api_client(admin_user).get(f"/api/v1/modules/{version.module_id}/audit.csv")
    refused = api_client(legal).get("/api/v1/audit.csv")

    assert overall.status_code == 200 and per_module.status_code == 200
    assert refused.status_code == 403
    all_rows = list(csv.DictReader(io.StringIO(b"".join(overall.streaming_content).decode())))
    module_rows = list(csv.DictReader(io.StringIO(b"".join(per_module.streaming_content).decode())))
    assert len(all_rows) == AuditEntry.objects.count()
    assert {r["module_id"] for r in module_rows} == {str(version.module_id)}
    assert str(other.module_id) in {r["module_id"] for r in all_rows}
    assert "version.approved" in {r["action"] for r in module_rows}


def test_withdrawal_removes_the_module_from_the_engines_content_api_in_the_same_request(
    author, medical, legal, regulatory, engine
):
    version = approve_all(make_module(author), medical, legal, regulatory)
    engine_client = api_client(engine)
    assert engine_client.get(f"/api/v1/content/{version.module_id}").status_code == 200

    withdrawn = api_client(medical).post(
        f"/api/v1/modules/{version.module_id}/withdraw",
        {"reason": "Label change", "password": PASSWORD},
        format="json",
    )

    assert withdrawn.status_code == 200
    assert engine_client.get(f"/api/v1/content/{version.module_id}").status_code == 404
    listed = engine_client.get("/api/v1/content").json()["results"]
    assert version.module_id not in [item["module"] for item in listed]


def test_author_recalls_the_open_round_through_the_api(in_review, author, legal):
    decide(in_review, "legal", legal, "request_changes", comment="Qualify")
    url = f"/api/v1/modules/{in_review.module_id}/recall"

    response = api_client(author).post(url, {"reason": "Wrong market"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["version_status"]) == ("recalled", "changes_requested")
    assert (body["recalled_by"], body["recall_reason"]) == (author.username, "Wrong market")
    assert {t["role"]: t["status"] for t in body["tasks"]} == {
        "legal": "changes_requested",
        "medical": "cancelled",
        "regulatory": "cancelled",
    }
    assert AuditEntry.objects.filter(action="review.recalled", actor=author).count() == 1
    again = api_client(author).post(url, {"reason": "Again"}, format="json")
    assert again.status_code == 409


def test_recall_refuses_a_missing_reason_and_a_reviewer(in_review, author, legal):
    url = f"/api/v1/modules/{in_review.module_id}/recall"

    missing = api_client(author).post(url, {}, format="json")
    reviewer = api_client(legal).post(url, {"reason": "Mine now"}, format="json")

    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    assert reviewer.status_code == 403
    assert Review.objects.get(version=in_review).status == "open"
