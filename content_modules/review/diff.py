"""Field-by-field diff of two versions: word-level text opcodes and tag set changes."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

from content_modules.library.models import ModuleVersion, VersionStatus

TEXT_FIELDS = ("title", "headline", "body", "key_message", "call_to_action", "image_alt")
SINGLE_TAGS = ("message", "tonality", "format")
SET_FIELDS = ("themes", "channels", "references")
SCALAR_FIELDS = ("image", "expires_on")

# Words, runs of whitespace and single punctuation marks: whitespace is kept as
# tokens so joining the tokens of each side gives back the exact original text.
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Split text into word, whitespace and punctuation tokens (lossless)."""
    return _TOKEN.findall(text or "")


def text_diff(old: str, new: str) -> list[dict[str, str]]:
    """Word-level opcodes turning ``old`` into ``new``.

    Each item is ``{"op": "equal"|"insert"|"delete"|"replace", "old": str, "new": str}``;
    the ``old`` parts concatenated give ``old`` back, the ``new`` parts give ``new``.
    """
    a, b = tokenize(old), tokenize(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [
        {"op": tag, "old": "".join(a[i1:i2]), "new": "".join(b[j1:j2])}
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _content(version: ModuleVersion | None) -> dict[str, Any]:
    return version.content_dict() if version is not None else {}


def version_diff(old: ModuleVersion | None, new: ModuleVersion) -> dict[str, Any]:
    """Diff ``new`` against ``old`` (None: everything is new), field by field.

    Answers ``{"old_version", "new_version", "changed": [fields], "fields": {...}}``
    where text fields carry ``opcodes`` and tag sets carry added/removed/kept.
    """
    before, after = _content(old), _content(new)
    fields: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        o, n = before.get(name, ""), after.get(name, "")
        fields[name] = {
            "kind": "text",
            "changed": o != n,
            "old": o,
            "new": n,
            "opcodes": text_diff(o, n),
        }
    for name in SINGLE_TAGS + SCALAR_FIELDS:
        o, n = before.get(name), after.get(name)
        fields[name] = {"kind": "value", "changed": o != n, "old": o, "new": n}
    for name in SET_FIELDS:
        o, n = set(before.get(name, [])), set(after.get(name, []))
        fields[name] = {
            "kind": "set",
            "changed": o != n,
            "added": sorted(n - o),
            "removed": sorted(o - n),
            "kept": sorted(o & n),
        }
    return {
        "old_version": old.number if old is not None else None,
        "new_version": new.number,
        "changed": [name for name, f in fields.items() if f["changed"]],
        "fields": fields,
    }


# Versions that were approved at some point in their life.
_ONCE_APPROVED = (
    VersionStatus.APPROVED,
    VersionStatus.SUPERSEDED,
    VersionStatus.EXPIRED,
    VersionStatus.WITHDRAWN,
)


def previous_version(version: ModuleVersion) -> ModuleVersion | None:
    """The version numbered just before this one, if any."""
    return (
        ModuleVersion.objects.filter(module_id=version.module_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )


def last_approved_version(version: ModuleVersion) -> ModuleVersion | None:
    """The newest earlier version that was ever approved (what a reviewer diffs against)."""
    return (
        ModuleVersion.objects.filter(
            module_id=version.module_id,
            number__lt=version.number,
            status__in=_ONCE_APPROVED,
            approved_at__isnull=False,
        )
        .order_by("-number")
        .first()
    )
