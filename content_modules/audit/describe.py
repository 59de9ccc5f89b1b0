"""An audit entry in words, for people reading the trail in the browser.

``describe(entry)`` answers one sentence per entry, written by one small
function per ``AuditAction``: "Version 2 signed by Mia Medical as medical
reviewer — signature meaning: approved". It reads ``entry.data`` with
``.get`` only, so an entry written before a key existed, or with keys added
later, is still described (missing parts are left out, never guessed), and an
action this module does not know falls back to the action's label.

Version numbers come from ``entry.data["version"]`` when the entry carries
one, else from the ``versions`` map (version id -> number) the caller loads
once per page (``version_numbers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .actions import AuditAction

Describer = Callable[[Any, dict[str, Any], str], str]

ROLE_WORDS = {"medical": "medical", "legal": "legal", "regulatory": "regulatory"}
MEANING_WORDS = {
    "approved": "approved",
    "changes_requested": "changes requested",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
}
DECISION_WORDS = {
    "approve": "approved",
    "request_changes": "requested changes to",
    "reject": "rejected",
}
FAILURE_WORDS = {
    "wrong_password": "wrong password",
    "missing_password": "no password given",
    "locked": "account locked after repeated failures",
}
INTENT_WORDS = {
    "approve": "approve",
    "request_changes": "request changes to",
    "reject": "reject",
    "withdraw": "withdraw",
}
STATUS_WORDS = {
    "draft": "draft",
    "in_review": "in review",
    "approved": "approved",
    "changes_requested": "changes requested",
    "rejected": "rejected",
    "superseded": "superseded",
    "withdrawn": "withdrawn",
    "expired": "expired",
}


def version_numbers(entries: Iterable[Any]) -> dict[int, int]:
    """Version id -> number for the versions these entries name (one query)."""
    from content_modules.library.models import ModuleVersion

    ids = {e.version_id for e in entries if e.version_id is not None}
    if not ids:
        return {}
    return dict(ModuleVersion.objects.filter(pk__in=ids).values_list("pk", "number"))


def _text(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(entry) -> str:
    return entry.actor_name or "system"


def _words(mapping: Mapping[str, str], value: Any) -> str:
    return mapping.get(str(value), str(value).replace("_", " ")) if value else ""


def _keys(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, dict):
        return ", ".join(sorted(str(k) for k in value))
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return ""


class _Context:
    def __init__(self, entry, versions: Mapping[int, int]) -> None:
        self.entry = entry
        self.versions = versions

    def version(self, data: dict[str, Any]) -> str:
        number = data.get("version")
        if not isinstance(number, int) and self.entry.version_id is not None:
            number = self.versions.get(self.entry.version_id)
        return f"version {number}" if isinstance(number, int) else "a version"


def _role_part(data: dict[str, Any]) -> str:
    role = _words(ROLE_WORDS, data.get("role"))
    return f" as {role} reviewer" if role else ""


def _comment(data: dict[str, Any], key: str = "comment") -> str:
    comment = data.get(key)
    return f": “{_text(comment)}”" if comment else ""


# One function per action: (context, data, who) -> sentence.
def _module_created(c: _Context, d: dict, who: str) -> str:
    title = (d.get("content") or {}).get("title") if isinstance(d.get("content"), dict) else None
    named = f" “{_text(title, 80)}”" if title else ""
    return f"Module{named} created by {who} (version 1, draft)"


def _version_created(c: _Context, d: dict, who: str) -> str:
    base = d.get("based_on")
    based = f" from version {base}" if base else ""
    changed = _keys(d, "changes")
    return f"{c.version(d).capitalize()} started by {who}{based}" + (
        f"; changed: {changed}" if changed else ""
    )


def _version_edited(c: _Context, d: dict, who: str) -> str:
    changed = _keys(d, "changes")
    return f"{c.version(d).capitalize()} edited by {who}" + (
        f"; changed: {changed}" if changed else ""
    )


def _status(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        sentence = f"{c.version(d).capitalize()} {verb}"
        if d.get("round"):
            sentence += f" (review round {d['round']})"
        sentence += f" — {who}" if who != "system" else " — automatically"
        decisions = d.get("decisions")
        if isinstance(decisions, dict) and decisions:
            parts = ", ".join(
                f"{r} {_words(STATUS_WORDS, s)}" for r, s in sorted(decisions.items())
            )
            sentence += f"; decisions: {parts}"
        if d.get("reason"):
            sentence += f"; reason: “{_text(d['reason'])}”"
        return sentence

    return describe


def _submitted(c: _Context, d: dict, who: str) -> str:
    roles = _keys(d, "roles")
    sentence = f"{c.version(d).capitalize()} submitted for MLR review by {who}"
    if d.get("round"):
        sentence += f" (round {d['round']})"
    return sentence + (f"; reviewers: {roles}" if roles else "")


def _image_uploaded(c: _Context, d: dict, who: str) -> str:
    name = d.get("original_name")
    size = f" ({d['width']}×{d['height']})" if d.get("width") and d.get("height") else ""
    return f"Image{f' “{_text(name, 80)}”' if name else ''}{size} uploaded by {who}"


def _reference_created(c: _Context, d: dict, who: str) -> str:
    pdf = " with a PDF" if d.get("pdf") else ""
    return f"Reference “{_text(d.get('citation') or '?', 120)}”{pdf} added by {who}"


def _tag_created(c: _Context, d: dict, who: str) -> str:
    return f"Vocabulary term “{d.get('slug', '?')}” ({d.get('kind', 'tag')}) added by {who}"


def _task_added(c: _Context, d: dict, who: str) -> str:
    role = _words(ROLE_WORDS, d.get("role")) or "a"
    why = f" ({d['reason']})" if d.get("reason") else ""
    return f"{role.capitalize()} review task added to {c.version(d)}{why}"


def _task_decided(c: _Context, d: dict, who: str) -> str:
    verb = DECISION_WORDS.get(str(d.get("decision")), "decided on")
    return f"{who}{_role_part(d)} {verb} {c.version(d)}{_comment(d)}"


def _task_cancelled(c: _Context, d: dict, who: str) -> str:
    role = _words(ROLE_WORDS, d.get("role"))
    because = f" because the round was {d['because']}" if d.get("because") else ""
    reason = f"; reason: “{_text(d['reason'])}”" if d.get("reason") else ""
    return f"{(role + ' review task').capitalize() if role else 'Review task'} of {c.version(d)} cancelled by {who}{because}{reason}"  # noqa: E501


def _task_reassigned(c: _Context, d: dict, who: str) -> str:
    role = _words(ROLE_WORDS, d.get("role"))
    target = f" to user #{d['to']}" if d.get("to") else ""
    return f"{(role + ' review task').capitalize() if role else 'Review task'} of {c.version(d)} reassigned{target} by {who}"  # noqa: E501


def _task_reminded(c: _Context, d: dict, who: str) -> str:
    role = _words(ROLE_WORDS, d.get("role"))
    return f"Reminder sent: the {role + ' ' if role else ''}review of {c.version(d)} is overdue"


def _task_reopened(c: _Context, d: dict, who: str) -> str:
    role = _words(ROLE_WORDS, d.get("role"))
    why = f" ({d['reason']})" if d.get("reason") else ""
    return f"{(role + ' review task').capitalize() if role else 'Review task'} of {c.version(d)} reopened{why}"  # noqa: E501


def _recalled(c: _Context, d: dict, who: str) -> str:
    round_part = f" round {d['round']}" if d.get("round") else ""
    reason = f"; reason: “{_text(d['reason'])}”" if d.get("reason") else ""
    outcome = f"; it goes back as {_words(STATUS_WORDS, d['outcome'])}" if d.get("outcome") else ""
    return f"Review{round_part} of {c.version(d)} recalled by {who}{reason}{outcome}"


def _reference_checked(c: _Context, d: dict, who: str) -> str:
    ref = f" #{d['reference']}" if d.get("reference") else ""
    return f"Reference{ref} checked on {c.version(d)} by {who}"


def _signature_applied(c: _Context, d: dict, who: str) -> str:
    name = d.get("printed_name") or who
    meaning = _words(MEANING_WORDS, d.get("meaning")) or "unknown"
    return f"{c.version(d).capitalize()} signed by {name}{_role_part(d)} — signature meaning: {meaning}"  # noqa: E501


def _signature_failed(c: _Context, d: dict, who: str) -> str:
    intent = INTENT_WORDS.get(str(d.get("intent")), "sign")
    reason = _words(FAILURE_WORDS, d.get("reason")) or "refused"
    where = f" from {d['client_ip']}" if d.get("client_ip") else ""
    return f"Failed signing attempt by {who}{_role_part(d)} to {intent} {c.version(d)} — {reason}{where}"  # noqa: E501


def _annotation_created(c: _Context, d: dict, who: str) -> str:
    if d.get("parent"):
        return f"{who} replied on {c.version(d)}{_comment(d, 'text')}"
    quote = f" on “{_text(d['quoted_text'], 60)}”" if d.get("quoted_text") else ""
    field = f" ({str(d['field']).replace('_', ' ')})" if d.get("field") else ""
    return f"{who} commented on {c.version(d)}{field}{quote}{_comment(d, 'text')}"


def _annotation_resolved(c: _Context, d: dict, who: str) -> str:
    return f"Comment on {c.version(d)} resolved by {who}"


def _annotation_replied(c: _Context, d: dict, who: str) -> str:
    quote = f" on “{_text(d['quoted_text'], 60)}”" if d.get("quoted_text") else ""
    return f"{who} replied to a comment on {c.version(d)}{quote}{_comment(d, 'text')}"


def _annotation_addressed(c: _Context, d: dict, who: str) -> str:
    quote = f" on “{_text(d['quoted_text'], 60)}”" if d.get("quoted_text") else ""
    return f"Comment{quote} on {c.version(d)} marked addressed by {who}"


def _annotation_reopened(c: _Context, d: dict, who: str) -> str:
    quote = f" on “{_text(d['quoted_text'], 60)}”" if d.get("quoted_text") else ""
    return f"Comment{quote} on {c.version(d)} marked not addressed by {who}"


def _carried_over(c: _Context, d: dict, who: str) -> str:
    carried = d.get("carried", 0)
    outdated = d.get("outdated", 0)
    return (
        f"{carried} comment(s) carried over to {c.version(d)}; {outdated} no longer match the text"
    )


def _expiry_notice(c: _Context, d: dict, who: str) -> str:
    when = f" on {d['expires_on']}" if d.get("expires_on") else ""
    return f"Owners told that {c.version(d)} expires{when}"


def _training_requested(c: _Context, d: dict, who: str) -> str:
    return f"Affinity model training requested by {who}"


def _training_deferred(c: _Context, d: dict, who: str) -> str:
    why = f" ({d['reason']})" if d.get("reason") else ""
    return f"Affinity model training requested by {who} but deferred{why}"


def _model(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        model = f" {d['model_version']}" if d.get("model_version") else ""
        why = d.get("reason") or d.get("gate")
        return (
            f"Affinity model{model} {verb}"
            + (f" — {_text(why)}" if why else "")
            + (f" by {who}" if who != "system" else "")
        )

    return describe


def _token(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        name = f" “{_text(d['name'], 60)}”" if d.get("name") else ""
        prefix = f" ({d['prefix']}…)" if d.get("prefix") else ""
        return f"API token{name}{prefix} {verb} by {who}"

    return describe


def _experiment(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        name = f" '{_text(d['name'], 100)}'" if d.get("name") else ""
        arms = _keys(d, "arms")
        return f"Experiment{name} {verb} by {who}" + (f" ({arms})" if arms else "")

    return describe


def _webhook(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        url = f" for {_text(d['url'], 100)}" if d.get("url") else ""
        events = _keys(d, "events")
        return f"Webhook{url} {verb} by {who}" + (f" ({events})" if events else "")

    return describe


def _admin(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        what = d.get("repr") or d.get("model") or "an object"
        model = f" ({d['model']})" if d.get("model") and d.get("repr") else ""
        return f"“{_text(what, 100)}”{model} {verb} in the admin by {who}"

    return describe


def _claim_link(verb: str) -> Describer:
    def describe(c: _Context, d: dict, who: str) -> str:
        quote = f" “{_text(d['quoted_text'], 60)}”" if d.get("quoted_text") else ""
        ref = f" reference #{d['reference']}" if d.get("reference") else " a reference"
        where = f" ({_text(d['locator'], 40)})" if d.get("locator") else ""
        return f"Claim{quote} on {c.version(d)} {verb}{ref}{where} by {who}"

    return describe


def _claim_links_carried(c: _Context, d: dict, who: str) -> str:
    carried = d.get("carried")
    dropped = d.get("dropped")
    n = len(carried) if isinstance(carried, dict) else 0
    m = len(dropped) if isinstance(dropped, dict) else 0
    to = d.get("to_version")
    target = f"version {to}" if isinstance(to, int) else c.version(d)
    return f"{n} claim link(s) carried over to {target}; {m} no longer match the text"


def _chain_keyed(c: _Context, d: dict, who: str) -> str:
    return "The audit chain was keyed: entries from here on carry keyed hashes"


DESCRIBERS: dict[AuditAction, Describer] = {
    AuditAction.MODULE_CREATED: _module_created,
    AuditAction.VERSION_CREATED: _version_created,
    AuditAction.VERSION_EDITED: _version_edited,
    AuditAction.IMAGE_UPLOADED: _image_uploaded,
    AuditAction.CLAIM_LINK_CREATED: _claim_link("linked to"),
    AuditAction.CLAIM_LINK_DELETED: _claim_link("unlinked from"),
    AuditAction.CLAIM_LINKS_CARRIED_OVER: _claim_links_carried,
    AuditAction.REFERENCE_CREATED: _reference_created,
    AuditAction.TAG_CREATED: _tag_created,
    AuditAction.VERSION_SUBMITTED: _submitted,
    AuditAction.VERSION_APPROVED: _status("approved: every required role signed"),
    AuditAction.VERSION_CHANGES_REQUESTED: _status("sent back with changes requested"),
    AuditAction.VERSION_REJECTED: _status("rejected"),
    AuditAction.VERSION_SUPERSEDED: _status("superseded by a newer approved version"),
    AuditAction.VERSION_WITHDRAWN: _status("withdrawn from delivery"),
    AuditAction.VERSION_EXPIRED: _status("expired"),
    AuditAction.VERSION_EXPIRY_NOTICE_SENT: _expiry_notice,
    AuditAction.TASK_ADDED: _task_added,
    AuditAction.TASK_DECIDED: _task_decided,
    AuditAction.TASK_CANCELLED: _task_cancelled,
    AuditAction.TASK_REASSIGNED: _task_reassigned,
    AuditAction.TASK_REMINDED: _task_reminded,
    AuditAction.TASK_REOPENED: _task_reopened,
    AuditAction.REVIEW_RECALLED: _recalled,
    AuditAction.REFERENCE_CHECKED: _reference_checked,
    AuditAction.SIGNATURE_APPLIED: _signature_applied,
    AuditAction.SIGNATURE_FAILED: _signature_failed,
    AuditAction.ANNOTATION_CREATED: _annotation_created,
    AuditAction.ANNOTATION_RESOLVED: _annotation_resolved,
    AuditAction.ANNOTATION_REPLIED: _annotation_replied,
    AuditAction.ANNOTATION_ADDRESSED: _annotation_addressed,
    AuditAction.ANNOTATION_REOPENED: _annotation_reopened,
    AuditAction.ANNOTATIONS_CARRIED_OVER: _carried_over,
    AuditAction.AFFINITY_TRAINING_REQUESTED: _training_requested,
    AuditAction.AFFINITY_TRAINING_DEFERRED: _training_deferred,
    AuditAction.AFFINITY_TRAINING_NOT_QUEUED: _training_deferred,
    AuditAction.AFFINITY_MODEL_ACTIVATED: _model("put in use"),
    AuditAction.AFFINITY_MODEL_FORCE_ACTIVATED: _model("forced into use"),
    AuditAction.AFFINITY_MODEL_REJECTED: _model("rejected by the gate"),
    AuditAction.TOKEN_ISSUED: _token("issued"),
    AuditAction.TOKEN_REVOKED: _token("revoked"),
    AuditAction.WEBHOOK_REGISTERED: _webhook("registered"),
    AuditAction.WEBHOOK_DELETED: _webhook("deleted"),
    AuditAction.EXPERIMENT_STARTED: _experiment("started"),
    AuditAction.EXPERIMENT_STOPPED: _experiment("stopped"),
    AuditAction.EXPERIMENT_ARCHIVED: _experiment("archived"),
    AuditAction.ADMIN_ADDED: _admin("added"),
    AuditAction.ADMIN_CHANGED: _admin("changed"),
    AuditAction.ADMIN_DELETED: _admin("deleted"),
    AuditAction.AUDIT_CHAIN_KEYED: _chain_keyed,
}


def action_label(action: str) -> str:
    """The action's label ("Signature failed"), or the stored string when it is unknown."""
    try:
        return str(AuditAction(action).label)
    except ValueError:
        return action


def describe(entry, versions: Mapping[int, int] | None = None) -> str:
    """One entry in words; never raises on unexpected data."""
    data = entry.data if isinstance(entry.data, dict) else {}
    who = _who(entry)
    try:
        describer = DESCRIBERS[AuditAction(entry.action)]
    except (ValueError, KeyError):
        return f"{action_label(entry.action)} by {who}"
    try:
        return describer(_Context(entry, versions or {}), data, who)
    except (TypeError, ValueError, KeyError, AttributeError):
        # Data of an unexpected shape (an older or newer writer): say what is certain.
        return f"{action_label(entry.action)} by {who}"
