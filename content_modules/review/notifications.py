"""Emails the review workflow sends: decisions to authors, reminders, expiry notices.

Mail goes out after the transaction commits, so a rolled-back action never
tells anyone it happened; a mail server error is logged, never turned into a
failed request after the data was already saved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

from content_modules.accounts.roles import REVIEW_ROLE_GROUP, Role

logger = logging.getLogger(__name__)


def _addresses(users: Iterable) -> list[str]:
    return sorted({u.email for u in users if u is not None and u.email and u.is_active})


def owners_of(version) -> list:
    """The people responsible for a version: its creator, its editors and the module's creator."""
    people = {version.created_by_id: version.created_by}
    people[version.module.created_by_id] = version.module.created_by
    for editor in version.editors.all():
        people[editor.pk] = editor
    return list(people.values())


def reviewers_for_role(role: str) -> list:
    """Active users holding the group of one review role."""
    group = REVIEW_ROLE_GROUP[role]
    return list(get_user_model().objects.filter(groups__name=group, is_active=True))


def admins() -> list:
    """Active administrators: superusers and holders of the admin role."""
    return list(
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN), is_active=True)
        .distinct()
    )


def send_on_commit(*, subject: str, body: str, recipients: Iterable) -> None:
    """Queue one email to the given users for after the current transaction commits."""
    to = _addresses(recipients)
    if not to:
        return

    def _send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
        except Exception:  # a mail outage must not undo or fail a committed decision
            logger.exception("could not send %r to %s", subject, to)

    transaction.on_commit(_send)


def version_label(version) -> str:
    """How an email names a version."""
    return f"'{version.title}' (module {version.module_id}, version {version.number})"


def round_feedback(
    *, version, review, tasks, verb: str, recalled_by: str = "", reason: str = ""
) -> str:
    """The email body that hands every role's decision and comments of a round to the authors."""
    from .pages import round_feedback as feedback_of  # the page shows the same feedback

    lines = [f"{verb}: {version_label(version)}, review round {review.round}."]
    if recalled_by:
        lines.append(f"Recalled by {recalled_by} before every role decided. Reason: {reason}")
    lines.append("")
    for item in feedback_of(review, tasks=tasks):
        task = item["task"]
        who = f" by {item['decided_by']}" if item["decided_by"] else ""
        lines.append(f"{task.get_role_display()}: {task.get_status_display()}{who}")
        if task.comment:
            lines.append(f"  {task.comment}")
        for a in item["annotations"]:
            lines.append(f'  On "{a.quoted_text[:80]}" ({a.get_field_display()}): {a.text}')
        lines.append("")
    lines.append("Open the module page to read every comment and revise the module.")
    return "\n".join(lines) + "\n"
