"""The decision policy: one rule answered as a predicate and as a queryset, held equal.

Random people (any mix of roles, some inactive) and random review data
(authors, editors, assignments, decisions in other roles, recalls) are built
per example; for every person, ``decidable_tasks`` lists exactly the tasks
``may_decide`` accepts, and the action refuses exactly the others.
"""

from __future__ import annotations

import contextlib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_modules.errors import DomainError
from content_modules.review.models import ReviewTask, TaskStatus
from content_modules.review.policy import decision_policy
from content_modules.review.queries import review_queue
from content_modules.review.services import review_recall, task_decide, version_submit
from tests.factories import PASSWORD, api_client, content, make_module, make_user

from .helpers import submit, task_for

GROUPS = ["author", "medical_reviewer", "legal_reviewer", "regulatory_reviewer", "admin"]

person = st.fixed_dictionaries(
    {
        "groups": st.sets(st.sampled_from(GROUPS), max_size=3),
        "active": st.sampled_from([True, True, True, False]),
    }
)
module = st.fixed_dictionaries(
    {
        "creator": st.integers(0, 5),
        "editors": st.sets(st.integers(0, 5), max_size=2),
        "assignees": st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=3, max_size=3),
        "decisions": st.lists(
            st.tuples(
                st.integers(0, 2),
                st.integers(0, 5),
                st.sampled_from(["approve", "request_changes", "reject"]),
            ),
            max_size=4,
        ),
        "recall": st.booleans(),
    }
)


def _build(people_spec, modules_spec):
    people = []
    for spec in people_spec:
        user = make_user(is_active=spec["active"])
        user.groups.add(*Group.objects.filter(name__in=spec["groups"]))
        people.append(user)
    base_author = make_user("author")
    for spec in modules_spec:
        creator = people[spec["creator"] % len(people)]
        # Only authors create modules; otherwise the person edits someone else's module.
        owner = creator if "author" in {g.name for g in creator.groups.all()} else base_author
        version = make_module(owner if owner.is_active else base_author)
        version.editors.add(*(people[i % len(people)] for i in spec["editors"]))
        if creator is not owner:
            version.editors.add(creator)
        version_submit(actor=version.created_by, module=version.module)
        tasks = list(ReviewTask.objects.filter(version=version).order_by("role"))
        for task, who in zip(tasks, spec["assignees"], strict=False):
            if who is not None:
                ReviewTask.objects.filter(pk=task.pk).update(assignee=people[who % len(people)])
        for task_index, who, decision in spec["decisions"]:
            task = tasks[task_index % len(tasks)]
            with contextlib.suppress(DomainError):  # refusals are part of the data too
                task_decide(
                    actor=get_user_model().objects.get(pk=people[who % len(people)].pk),
                    task=task,
                    decision=decision,
                    comment="Needs work",
                    password=PASSWORD,
                )
        if spec["recall"]:
            with contextlib.suppress(DomainError):  # the round may have closed already
                review_recall(actor=version.created_by, module=version.module, reason="Redo")
    return people


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    people_spec=st.lists(person, min_size=2, max_size=6),
    modules_spec=st.lists(module, min_size=1, max_size=3),
)
def test_decidable_tasks_equal_the_tasks_may_decide_accepts(people_spec, modules_spec):
    content()
    with transaction.atomic():
        people = _build(people_spec, modules_spec)
        tasks = list(ReviewTask.objects.select_related("version__module"))
        for user in [*people, AnonymousUser()]:
            fresh = (
                get_user_model().objects.get(pk=user.pk) if user.pk is not None else AnonymousUser()
            )
            queried = set(decision_policy.decidable_tasks(fresh).values_list("pk", flat=True))
            predicted = {t.pk for t in tasks if decision_policy.may_decide(fresh, t)}
            assert queried == predicted, (fresh, people_spec, modules_spec)
        transaction.set_rollback(True)


def test_the_queue_the_page_and_the_action_agree_on_an_editor_who_reviews(client, author, legal):
    # Given a legal reviewer who also edited the version (a co-author)
    version = make_module(author)
    co_author = make_user("legal_reviewer")
    co_author.groups.add(Group.objects.get_or_create(name="author")[0])
    version.editors.add(co_author)
    submit(version)
    task = task_for(version, "legal")

    # Then the queue, the page, the API and the action all refuse them
    assert not review_queue(co_author, {"mine": True}).filter(pk=task.pk).exists()
    client.force_login(co_author)
    page = client.get(reverse("review:task", args=[task.pk])).content.decode()
    assert 'id="decision-form"' not in page
    assert "You wrote or edited this version" in page
    listed = api_client(co_author).get(reverse("api-review-list"), {"mine": "true"}).json()
    assert task.pk not in [t["id"] for t in listed["results"]]
    refused = api_client(co_author).post(
        reverse("api-review-decision", args=[task.pk]),
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    assert refused.status_code == 403
    assert task_for(version, "legal").status == TaskStatus.OPEN
    # And the plain legal reviewer gets the task everywhere
    assert review_queue(legal, {"mine": True}).filter(pk=task.pk).exists()
    client.force_login(legal)
    assert (
        'id="decision-form"' in client.get(reverse("review:task", args=[task.pk])).content.decode()
    )
