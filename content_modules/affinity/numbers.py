"""The figures a claim states, and whether a draft states figures an approved claim does not.

Two claims that differ only in a number ("reduced events by 30%" versus the
approved "by 24%") embed almost identically (cosine 0.99 with
all-MiniLM-L6-v2), yet the first is a new claim that needs its own
substantiation. The reuse finder therefore compares the figures too: a draft
that states a figure (a number with its unit, a percentage, a dose, a p-value)
that the approved text does not state is a new claim, whatever the cosine.

Figures are compared as values with a normalised unit, so "24%", "24 percent"
and "24 per cent" are one figure, "0.5 g" and "500 mg" are one dose, and word
order does not matter. Figures the approved text states and the draft leaves out
are not a new claim (the draft says less, not something else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Unit words as written -> (canonical unit, factor to the canonical unit).
_UNITS: dict[str, tuple[str, float]] = {
    "%": ("%", 1.0),
    "percent": ("%", 1.0),
    "per cent": ("%", 1.0),
    "pct": ("%", 1.0),
    "percentage points": ("pp", 1.0),
    "percentage point": ("pp", 1.0),
    "pp": ("pp", 1.0),
    "kg": ("mg", 1_000_000.0),
    "g": ("mg", 1000.0),
    "mg": ("mg", 1.0),
    "mcg": ("mg", 0.001),
    "µg": ("mg", 0.001),
    "μg": ("mg", 0.001),
    "ug": ("mg", 0.001),
    "ng": ("mg", 0.000001),
    "l": ("ml", 1000.0),
    "ml": ("ml", 1.0),
    "iu": ("iu", 1.0),
    "mmhg": ("mmhg", 1.0),
    "mmol/l": ("mmol/l", 1.0),
    "mg/dl": ("mg/dl", 1.0),
    "mg/kg": ("mg/kg", 1.0),
    "hours": ("h", 1.0),
    "hour": ("h", 1.0),
    "hrs": ("h", 1.0),
    "h": ("h", 1.0),
    "days": ("day", 1.0),
    "day": ("day", 1.0),
    "weeks": ("week", 1.0),
    "week": ("week", 1.0),
    "wks": ("week", 1.0),
    "months": ("month", 1.0),
    "month": ("month", 1.0),
    "years": ("year", 1.0),
    "year": ("year", 1.0),
    "patients": ("patients", 1.0),
    "people": ("patients", 1.0),
    "fold": ("x", 1.0),
    "x": ("x", 1.0),
    "times": ("x", 1.0),
}
_UNIT_PATTERN = "|".join(
    re.escape(word).replace(r"\ ", r"\s+") for word in sorted(_UNITS, key=len, reverse=True)
)
# A number (1,234 / 1.5 / .05), optionally with a unit right after it.
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_FIGURE = re.compile(
    rf"(?<![\w.,])(?P<number>{_NUMBER})(?:\s*-?\s*(?P<unit>{_UNIT_PATTERN})(?![\w/]))?",
    re.IGNORECASE,
)
# Number words count with a unit only ("three years" is 3 years; "one of" is no figure).
_WORDS = {
    w: float(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()  # noqa: SIM905
    )
}
_WORD_FIGURE = re.compile(
    rf"\b(?P<number>{'|'.join(_WORDS)})\s*-?\s*(?P<unit>{_UNIT_PATTERN})(?![\w/])", re.IGNORECASE
)
# A time point written unit first: "week 12", "day 7".
_TIME_POINT = re.compile(r"\b(?P<unit>hour|day|week|month|year)\s+(?P<number>\d+)\b", re.IGNORECASE)
# A p-value: "p<0.001", "P = .03", "p-value of 0.04".
_P_VALUE = re.compile(
    rf"\bp(?:\s*-?\s*value)?\s*(?P<op>[<>=≤≥]|of)\s*(?P<number>{_NUMBER})", re.IGNORECASE
)


@dataclass(frozen=True)
class Figure:
    """One figure a text states: its value in the canonical unit, and as written."""

    value: float
    unit: str  # canonical: "%", "mg", "week", "p<", ... or "" for a bare number
    text: str

    @property
    def key(self) -> tuple[str, float]:
        return (self.unit, round(self.value, 9))


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def figures(text: str) -> list[Figure]:
    """The figures stated in ``text``, in order (p-values first, then the others)."""
    found: list[Figure] = []
    taken: list[tuple[int, int]] = []
    for m in _P_VALUE.finditer(text):
        op = m.group("op").replace("≤", "<").replace("≥", ">").replace("of", "=")
        found.append(Figure(_number(m.group("number")), f"p{op}", m.group(0).strip()))
        taken.append(m.span("number"))
    for m in _TIME_POINT.finditer(text):
        unit = _UNITS[m.group("unit").lower()][0]
        found.append(Figure(_number(m.group("number")), unit, m.group(0).strip()))
        taken.append(m.span("number"))
    for m in _WORD_FIGURE.finditer(text):
        unit, factor = _UNITS[re.sub(r"\s+", " ", m.group("unit").lower())]
        found.append(Figure(_WORDS[m.group("number").lower()] * factor, unit, m.group(0).strip()))
    for m in _FIGURE.finditer(text):
        if any(start <= m.start() < end for start, end in taken):
            continue
        unit_text = m.group("unit")
        value = _number(m.group("number"))
        unit = ""
        if unit_text:
            unit, factor = _UNITS[re.sub(r"\s+", " ", unit_text.lower())]
            value *= factor
        found.append(Figure(value, unit, m.group(0).strip()))
    return found


@dataclass(frozen=True)
class FigureDifference:
    """A figure the draft states that the approved text does not, and the approved one."""

    draft: str
    approved: str | None  # the approved text's figure of the same unit, if it has one

    def describe(self) -> str:
        if self.approved is None:
            return f"{self.draft} (not in the approved text)"
        return f"{self.draft} vs approved {self.approved}"


def _family(figure: Figure) -> str:
    return "p" if figure.unit in ("p<", "p>", "p=") else figure.unit


def differing_figures(draft: str, approved: str) -> list[FigureDifference]:
    """Figures stated in ``draft`` but not in ``approved``; empty when the figures agree.

    Each is paired with a figure of the same unit that the approved text states
    and the draft does not (the figure it replaced), when there is one.
    """
    draft_figures, approved_figures = figures(draft), figures(approved)
    approved_keys = {f.key for f in approved_figures}
    draft_keys = {f.key for f in draft_figures}
    unmatched = [f for f in approved_figures if f.key not in draft_keys]
    out: list[FigureDifference] = []
    seen: set[tuple[str, float]] = set()
    for figure in draft_figures:
        if figure.key in approved_keys or figure.key in seen:
            continue
        seen.add(figure.key)
        counterpart = next((a for a in unmatched if _family(a) == _family(figure)), None)
        if counterpart is not None:
            unmatched.remove(counterpart)
        out.append(FigureDifference(figure.text, counterpart.text if counterpart else None))
    return out
