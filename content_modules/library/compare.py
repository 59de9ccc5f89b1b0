"""Side-by-side compare of any two versions of one module (the review app keeps the inline diff).

Plain functions: which two versions a request asks for (with the errors people
read), and the rows of the compare table, field by field, marked when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from .models import Module, ModuleVersion

TEXT_ROWS = (
    ("title", "Title"),
    ("headline", "Headline"),
    ("body", "Body"),
    ("key_message", "Key message"),
    ("call_to_action", "Call to action"),
)


class CompareForm(forms.Form):
    """The version picker: two version numbers of the module, ``a`` (older side) and ``b``."""

    a = forms.IntegerField(
        label="Compare version",
        min_value=1,
        error_messages={
            "invalid": "Version must be a whole number.",
            "required": "Choose a version.",
        },
    )
    b = forms.IntegerField(
        label="with version",
        min_value=1,
        error_messages={
            "invalid": "Version must be a whole number.",
            "required": "Choose a version.",
        },
    )

    def __init__(self, *args: Any, module: Module, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.module = module
        self.numbers = list(module.versions.order_by("number").values_list("number", flat=True))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("a", "b"):
            number = data.get(name)
            if number is not None and number not in self.numbers:
                self.add_error(
                    name,
                    f"Module {self.module.pk} has no version {number} "
                    f"(it has {', '.join(map(str, self.numbers))}).",
                )
        return data


def default_pair(module: Module) -> tuple[int, int] | None:
    """The pair a plain link compares: the approved (else previous) version with the latest."""
    latest = module.versions.order_by("-number").values_list("number", flat=True).first()
    if latest is None or latest == 1:
        return None
    approved = (
        ModuleVersion.objects.approved_now()
        .filter(module=module)
        .exclude(number=latest)
        .values_list("number", flat=True)
        .first()
    )
    return (approved or latest - 1, latest)


@dataclass(frozen=True)
class CompareRow:
    name: str
    label: str
    kind: str  # "text", "image" or "value"
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        if self.kind == "image":
            return _image_key(self.a) != _image_key(self.b)
        return self.a != self.b


def _image_key(image) -> str | None:
    return image.sha256 if image is not None else None


def _labels(items) -> str:
    return ", ".join(sorted(str(item) for item in items)) or "—"


def _references(version: ModuleVersion) -> str:
    return "; ".join(sorted(r.citation for r in version.references.all())) or "—"


def compare_rows(a: ModuleVersion, b: ModuleVersion) -> list[CompareRow]:
    """Every field of two versions, in the order the form shows them."""
    rows = [
        CompareRow(name, label, "text", getattr(a, name), getattr(b, name))
        for name, label in TEXT_ROWS
    ]
    rows.append(CompareRow("image", "Image", "image", a.image, b.image))
    rows.append(CompareRow("image_alt", "Image description", "value", _alt(a), _alt(b)))
    rows += [
        CompareRow("message", "Message", "value", a.message.label, b.message.label),
        CompareRow(
            "themes",
            "Themes",
            "value",
            _labels(t.label for t in a.themes.all()),
            _labels(t.label for t in b.themes.all()),
        ),
        CompareRow("tonality", "Tonality", "value", a.tonality.label, b.tonality.label),
        CompareRow("format", "Format", "value", a.format.label, b.format.label),
        CompareRow(
            "channels",
            "Channels",
            "value",
            _labels(c.label for c in a.channels.all()),
            _labels(c.label for c in b.channels.all()),
        ),
        CompareRow("references", "References", "value", _references(a), _references(b)),
        CompareRow("expires_on", "Expires", "value", a.expires_on, b.expires_on),
    ]
    return rows


def _alt(version: ModuleVersion) -> str:
    """The image's description as HCPs' screen readers get it (none without an image)."""
    return version.image_alt_text if version.image is not None else ""
