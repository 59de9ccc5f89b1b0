"""Read helpers for the reviewer pages: who may open them, text anchoring, diffs and charts.

Nothing here changes data: the pages call the actions in ``services.py``;
this module only shapes what the templates show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from content_modules.accounts.roles import (
    ReviewRole,
    can_see_unapproved,
    has_role,
    is_admin,
    is_reviewer,
)
from content_modules.library.models import Module, ModuleVersion, Reference

from .models import Annotation, Review, ReviewStatus, ReviewTask, Signature, TaskStatus
from .policy import decision_policy
from .services import WITHDRAW_ROLES, may_recall

# --- who may open which page ---------------------------------------------------------------


def may_review(user) -> bool:
    """Reviewers of any role and admins open the queue, task pages and the dashboard."""
    return is_reviewer(user) or is_admin(user)


def may_see_history(user) -> bool:
    """Everyone who works on content (authors, reviewers, admins) reads a module's history."""
    return can_see_unapproved(user)


def may_withdraw(user) -> bool:
    """Whether the withdraw form is offered (the action checks again)."""
    return has_role(user, *WITHDRAW_ROLES)


# --- text anchoring ------------------------------------------------------------------------


def _normalise_newlines(text: str) -> tuple[str, list[int]]:
    """Text as a browser sees it (CR LF and CR become LF) and, per character, its raw index."""
    out: list[str] = []
    raw_index: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        raw_index.append(i)
        if ch == "\r":
            out.append("\n")
            i += 2 if text[i + 1 : i + 2] == "\n" else 1
        else:
            out.append(ch)
            i += 1
    raw_index.append(len(text))
    return "".join(out), raw_index


def browser_offsets_to_raw(raw: str, start: int, end: int) -> tuple[int, int]:
    """Map a selection measured on the page to offsets in the stored text.

    A browser turns CR LF into LF when it parses the page, so offsets the
    script measures are in that normalised text; the annotation action wants
    offsets in the stored value. Offsets out of range pass through unchanged
    so the action reports them.
    """
    normalised, raw_index = _normalise_newlines(raw)
    if not (0 <= start <= len(normalised) and 0 <= end <= len(normalised)):
        return start, end
    return raw_index[start], raw_index[end]


@dataclass
class Segment:
    """A run of a field's text and the open annotations covering it."""

    text: str
    annotation_ids: list[int] = field(default_factory=list)

    @property
    def marked(self) -> bool:
        return bool(self.annotation_ids)

    @property
    def ids_attr(self) -> str:
        return " ".join(str(i) for i in self.annotation_ids)


def highlight_segments(text: str, spans: list[tuple[int, int, int]]) -> list[Segment]:
    """Split ``text`` at every annotation boundary; overlapping spans share segments.

    ``spans`` are ``(start, end, annotation_id)``. Concatenating the segments
    gives ``text`` back, so offsets measured on the page stay those of the text.
    """
    text = text or ""
    cuts = {0, len(text)}
    for start, end, _ in spans:
        cuts.update({max(0, min(start, len(text))), max(0, min(end, len(text)))})
    bounds = sorted(cuts)
    segments = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if a == b:
            continue
        ids = [i for start, end, i in spans if start <= a and b <= end]
        segments.append(Segment(text[a:b], ids))
    return segments


ANNOTATABLE_FIELDS = ("title", "headline", "body", "key_message", "call_to_action")


def field_segments(version: ModuleVersion, annotations: list[Annotation]) -> dict[str, Any]:
    """Per text field, the segments to render with open annotations highlighted."""
    spans: dict[str, list[tuple[int, int, int]]] = {f: [] for f in ANNOTATABLE_FIELDS}
    for a in annotations:
        if not a.resolved and a.field in spans:
            spans[a.field].append((a.start, a.end, a.pk))
    return {
        name: highlight_segments(getattr(version, name) or "", spans[name])
        for name in ANNOTATABLE_FIELDS
    }


def annotation_threads(version: ModuleVersion) -> list[Annotation]:
    """Root comments of a version with their replies and people, in reading order."""
    replies = Prefetch(
        "replies", queryset=Annotation.objects.select_related("author").order_by("created_at", "id")
    )
    return list(
        Annotation.objects.filter(version=version, parent__isnull=True)
        .select_related("author", "resolved_by", "addressed_by")
        .prefetch_related(replies)
        .order_by("resolved", "field", "start", "id")
    )


def outdated_threads(previous: ModuleVersion | None) -> list[Annotation]:
    """Comments of the previous version whose text no longer exists in this one."""
    if previous is None:
        return []
    replies = Prefetch(
        "replies", queryset=Annotation.objects.select_related("author").order_by("created_at", "id")
    )
    return list(
        Annotation.objects.filter(version=previous, parent__isnull=True, outdated=True)
        .select_related("author", "addressed_by")
        .prefetch_related(replies)
        .order_by("field", "start", "id")
    )


# --- comments worked by the authors (point 9 of issue 12) ----------------------------------

# Word characters for snapping a selection: letters, digits, combining marks and the
# apostrophes inside words ("patient's"). The page script uses the same class.
_WORD = re.compile(r"[\w\u0300-\u036f'\u2019]")


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` to whole words and drop surrounding whitespace.

    A drag that starts or ends inside a word ("ewer major cardi") anchors the
    comment on the words it touches ("fewer major cardiac"). Out-of-range
    offsets pass through unchanged so the action reports them.
    """
    if not (0 <= start < end <= len(text)):
        return start, end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return start, end
    while start > 0 and _WORD.match(text[start - 1]) and _WORD.match(text[start]):
        start -= 1
    while end < len(text) and _WORD.match(text[end]) and _WORD.match(text[end - 1]):
        end += 1
    return start, end


def last_reviewed_version(module: Module) -> ModuleVersion | None:
    """The version of the module's latest finished review round (its comments go to authors)."""
    review = (
        Review.objects.filter(version__module=module)
        .exclude(status=ReviewStatus.OPEN)
        .select_related("version")
        .order_by("-submitted_at", "-id")
        .first()
    )
    return review.version if review is not None else None


@dataclass
class AuthorThread:
    """A comment of the last round as the author works it on the edit page."""

    thread: Annotation
    # False when the draft no longer contains the commented text (reviewers will see it
    # as changed by the new version, with the old text quoted).
    text_kept: bool


def author_threads(module: Module, draft: ModuleVersion | None) -> dict[str, Any]:
    """Every comment of the last round, and whether the author's draft still holds its text."""
    reviewed = last_reviewed_version(module)
    if reviewed is None:
        return {"reviewed": None, "items": [], "open_count": 0}
    items = []
    for thread in annotation_threads(reviewed):
        kept = True
        if draft is not None and draft.pk != reviewed.pk:
            kept = thread.quoted_text in (getattr(draft, thread.field) or "")
        items.append(AuthorThread(thread=thread, text_kept=kept))
    return {
        "reviewed": reviewed,
        "items": items,
        "open_count": sum(1 for i in items if not i.thread.resolved and not i.thread.addressed),
    }


def previous_round_outcome(threads: list[Annotation], outdated: list[Annotation]) -> dict[str, int]:
    """What the new version did to the comments carried from the last round."""
    carried = [t for t in threads if t.origin_id is not None and not t.resolved]
    return {
        "text_changed": len(outdated),
        "addressed": sum(1 for t in carried if t.addressed),
        "open": sum(1 for t in carried if not t.addressed),
        "total": len(outdated) + len(carried),
    }


# --- diffs ---------------------------------------------------------------------------------

FIELD_LABELS = {
    "title": "Title",
    "headline": "Headline",
    "body": "Body",
    "key_message": "Key message",
    "call_to_action": "Call to action",
    "message": "Message tag",
    "tonality": "Tonality",
    "format": "Format",
    "image": "Image",
    "image_alt": "Alt text",
    "expires_on": "Expires on",
    "themes": "Themes",
    "channels": "Channels",
    "references": "References",
}


def coalesce_opcodes(opcodes: list[dict[str, str]]) -> list[dict[str, str]]:
    """Merge changes separated only by whitespace into one deleted and one inserted run.

    A word-level diff of a rewritten sentence matches the spaces between
    words, which would show as alternating one-word deletions and insertions;
    readers want the old phrase struck through and the new phrase after it.
    """
    merged: list[dict[str, str]] = []
    pending: dict[str, str] | None = None
    for i, op in enumerate(opcodes):
        if op["op"] != "equal":
            if pending is None:
                pending = {"op": "replace", "old": "", "new": ""}
            pending["old"] += op["old"]
            pending["new"] += op["new"]
            continue
        next_changes = i + 1 < len(opcodes) and opcodes[i + 1]["op"] != "equal"
        if pending is not None and next_changes and not op["old"].strip():
            pending["old"] += op["old"]
            pending["new"] += op["new"]
            continue
        if pending is not None:
            merged.append(pending)
            pending = None
        merged.append(op)
    if pending is not None:
        merged.append(pending)
    return merged


def diff_rows(diff: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The changed fields of a ``version_diff`` result, labelled, in display order.

    Reference ids are replaced by their citations so reviewers read what changed.
    """
    if not diff:
        return []
    ref_ids: set[int] = set()
    refs = diff["fields"].get("references", {})
    for key in ("added", "removed", "kept"):
        ref_ids.update(refs.get(key, []))
    citations = dict(Reference.objects.filter(pk__in=ref_ids).values_list("pk", "citation"))
    rows = []
    for name, item in diff["fields"].items():
        if not item["changed"]:
            continue
        row = {"name": name, "label": FIELD_LABELS.get(name, name), **item}
        if item["kind"] == "text":
            row["opcodes"] = coalesce_opcodes(item["opcodes"])
        if name == "image":
            row["old"] = "an image" if item["old"] else "no image"
            row["new"] = "a new image" if item["new"] else "no image"
        if name == "references":
            for key in ("added", "removed"):
                row[key] = [citations.get(i, f"reference {i}") for i in item[key]]
        rows.append(row)
    return rows


# --- the review page -----------------------------------------------------------------------


def task_for_page(pk: int) -> ReviewTask:
    """A task with everything its page header shows, in one query."""
    return ReviewTask.objects.with_context().select_related("review__submitted_by").get(pk=pk)


def review_tasks(review: Review) -> list[ReviewTask]:
    """Every role's task in a review, with who decided it."""
    return list(
        ReviewTask.objects.filter(review=review)
        .select_related("decided_by", "assignee")
        .order_by("role")
    )


def version_signatures(version: ModuleVersion) -> list[Signature]:
    """Every signature applied to one version, oldest first."""
    return list(Signature.objects.filter(version=version).order_by("signed_at", "id"))


SIGN_VERBS = {
    "approve": "approve",
    "request_changes": "request changes to",
    "reject": "reject",
}


def signature_statement(version: ModuleVersion, role: str, decision: str = "approve") -> str:
    """The meaning a reviewer signs: the decision, the version and its content hash."""
    if decision not in SIGN_VERBS:
        return (
            f"Choose a decision above; you sign it on version {version.number} "
            f"(hash {version.content_hash[:12]}…) as {role} reviewer."
        )
    verb = SIGN_VERBS[decision]
    return (
        f"By signing I {verb} version {version.number} "
        f"(hash {version.content_hash[:12]}…) as {role} reviewer."
    )


# --- the module page panel ----------------------------------------------------------------


def _person(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def round_feedback(review: Review, tasks: list[ReviewTask] | None = None) -> list[dict[str, Any]]:
    """Every role's decision, comment and text comments of one round, in role order.

    The open text comments on the version are grouped under the role of the
    reviewer who wrote them in this round; comments by anyone else (an admin,
    an earlier round's reviewer) come last under ``task`` None.
    """
    tasks = sorted(tasks if tasks is not None else review_tasks(review), key=lambda t: t.role)
    threads = [a for a in annotation_threads(review.version) if not a.resolved]
    role_of: dict[int, int] = {}
    for t in tasks:
        for person in (t.decided_by_id, t.assignee_id):
            if person is not None:
                role_of.setdefault(person, t.pk)
    items = [
        {
            "task": t,
            "decided_by": _person(t.decided_by) if t.decided_by_id else "",
            "annotations": [a for a in threads if role_of.get(a.author_id) == t.pk],
        }
        for t in tasks
    ]
    others = [a for a in threads if a.author_id not in role_of]
    if others:
        items.append({"task": None, "decided_by": "", "annotations": others})
    return items


def module_panel(user, module: Module, version: ModuleVersion) -> dict[str, Any]:
    """What the review panel on a module page shows to this user."""
    from content_modules.library.models import VersionStatus
    from content_modules.library.services import can_edit_module

    latest_review = (
        Review.objects.filter(version=version)
        .select_related("submitted_by", "closed_by", "version__module")
        .order_by("-submitted_at", "-id")
        .first()
    )
    tasks = review_tasks(latest_review) if latest_review else []
    signatures = list(
        Signature.objects.filter(version__module=module)
        .select_related("version")
        .order_by("-signed_at", "-id")[:20]
    )
    round_open = latest_review is not None and latest_review.status == ReviewStatus.OPEN
    my_task = None
    if version.status == VersionStatus.IN_REVIEW and may_review(user):
        my_task = next(
            (t for t in tasks if decision_policy.may_decide(user, t, version=version)), None
        )
    approved = ModuleVersion.objects.approved_now().filter(module=module).first()
    return {
        "module": module,
        "version": version,
        "review": latest_review,
        "tasks": tasks,
        "round_open": round_open,
        "decided_count": sum(1 for t in tasks if t.status != TaskStatus.OPEN),
        "waiting_for": [t.get_role_display().lower() for t in tasks if t.status == TaskStatus.OPEN],
        # Feedback is handed over when the round closes, every role's at once.
        "feedback": round_feedback(latest_review, tasks)
        if latest_review and not round_open
        else [],
        "signatures": signatures,
        "my_task": my_task,
        "can_submit": version.status == VersionStatus.DRAFT and can_edit_module(user, module),
        "can_recall": round_open and may_recall(user, module),
        "required_roles": module.brand.required_review_roles(),
        "approved_version": approved,
        "can_withdraw": approved is not None and may_withdraw(user),
    }


# --- the MLR dashboard charts (server-rendered SVG) ----------------------------------------
# Each chart's viewBox is about the size it is shown at, so its 11-12px labels stay legible.

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 22, 34
AGE_COLOURS = ("#9cc3f5", "#4f8fe0", "#1f5fbf", "#b3261e")
ROLE_LABELS = dict(ReviewRole.choices)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    for step in (1, 2, 4, 5, 8, 10, 12, 20, 24, 40, 48, 72, 100, 120, 168, 240, 336, 500):
        if value <= step:
            return float(step)
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float(-(-value // magnitude) * magnitude)


def _frame(width: int, height: int, top: float, **parts: Any) -> dict[str, Any]:
    plot_h = height - PAD_TOP - PAD_BOTTOM
    ticks = []
    for i in range(5):
        value = top * i / 4
        ticks.append({"y": round(PAD_TOP + plot_h - plot_h * i / 4, 1), "label": f"{value:g}"})
    return {
        "width": width,
        "height": height,
        "x0": PAD_LEFT,
        "x1": width - PAD_RIGHT,
        "y_base": height - PAD_BOTTOM,
        "label_y": height - PAD_BOTTOM + 16,
        "ticks": ticks,
        **parts,
    }


def cycle_time_chart(rows: list[dict[str, Any]], width: int = 960, height: int = 260):
    """Grouped bars per ISO week: median and 90th percentile hours to approval."""
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    top = _nice_max(max((r["p90_hours"] for r in rows), default=0))
    slot = plot_w / max(len(rows), 1)
    bar_w = min(26.0, slot / 3)
    groups = []
    for i, row in enumerate(rows):
        x0 = PAD_LEFT + i * slot + (slot - 2 * bar_w) / 2
        bars = []
        for j, (key, css) in enumerate((("median_hours", "median"), ("p90_hours", "p90"))):
            h = plot_h * row[key] / top
            bars.append(
                {
                    "x": round(x0 + j * bar_w, 1),
                    "y": round(PAD_TOP + plot_h - h, 1),
                    "w": round(bar_w - 2, 1),
                    "h": round(h, 1),
                    "css": css,
                    "value": row[key],
                }
            )
        groups.append(
            {
                **row,
                "bars": bars,
                "label_x": round(PAD_LEFT + i * slot + slot / 2, 1),
                "label": row["week"].split("-", 1)[-1],
            }
        )
    return _frame(width, height, top, groups=groups, unit="hours")


def first_pass_chart(rows: list[dict[str, Any]], width: int = 460) -> dict[str, Any]:
    """Horizontal bars: share of first-round decisions that approved, per role."""
    x0, right = 96, 112
    track = width - x0 - right
    bars = []
    for i, row in enumerate(rows):
        rate = row["rate"]
        w = round(track * (rate or 0), 1)
        bars.append(
            {
                **row,
                "label": ROLE_LABELS.get(row["role"], row["role"]),
                "y": 12 + i * 48,
                "w": w,
                "percent": None if rate is None else round(rate * 100),
                "text_x": x0 + track + 8,
            }
        )
    height = 12 + 48 * len(rows)
    return {"width": width, "height": height, "bars": bars, "x0": x0, "track": track}


def open_tasks_chart(open_tasks: dict[str, Any], width: int = 460, height: int = 240):
    """Stacked bars per role: open tasks split by age since submission."""
    buckets = open_tasks["buckets"]
    by_role = open_tasks["by_role"]
    totals = {role: sum(counts.values()) for role, counts in by_role.items()}
    top = _nice_max(max(totals.values(), default=0))
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(by_role), 1)
    bar_w = min(64.0, slot / 2)
    groups = []
    for i, (role, counts) in enumerate(by_role.items()):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        y = PAD_TOP + plot_h
        parts = []
        for j, bucket in enumerate(buckets):
            count = counts.get(bucket, 0)
            h = plot_h * count / top
            y -= h
            if count:
                parts.append(
                    {
                        "y": round(y, 1),
                        "h": round(h, 1),
                        "fill": AGE_COLOURS[j % len(AGE_COLOURS)],
                        "bucket": bucket,
                        "count": count,
                    }
                )
        groups.append(
            {
                "role": role,
                "label": ROLE_LABELS.get(role, role),
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "parts": parts,
                "total": totals[role],
                "overdue": open_tasks["overdue"].get(role, 0),
                "counts": [counts.get(b, 0) for b in buckets],
                "label_x": round(x + bar_w / 2, 1),
                "total_y": round(y - 6, 1),
            }
        )
    return _frame(width, height, top, groups=groups, unit="tasks")


def hbar_chart(
    rows: list[dict[str, Any]], *, key: str, label: str, width: int = 460, unit: str = ""
) -> dict[str, Any]:
    """Horizontal bars of ``row[key]`` per row, scaled to the largest (labels from ``label``)."""
    x0, right = 110, 120
    track = width - x0 - right
    top = max((float(r[key] or 0) for r in rows), default=0.0) or 1.0
    bars = []
    for i, row in enumerate(rows):
        value = float(row[key] or 0)
        bars.append(
            {
                **row,
                "bar_label": row[label],
                "y": 12 + i * 40,
                "w": round(track * value / top, 1),
                "value": row[key],
                "text_x": x0 + track + 8,
            }
        )
    height = 12 + 40 * len(rows)
    return {"width": width, "height": height, "bars": bars, "x0": x0, "track": track, "unit": unit}
