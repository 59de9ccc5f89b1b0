"""Pre-review checks (what Veeva calls Quick Check): what a reviewer would flag at once.

``run_checks(version)`` lists the findings for one version: prohibited phrases of its
brand (in every market or its own), a missing fair-balance or safety statement where the
brand requires one, claim sentences no reference supports (``claims.py``), figures that
differ from the approved claim the text resembles (``affinity/reuse.py``) and an image
without author-written alt text. None blocks submission unless the brand's policy says so
(``BrandPolicy.checks_block_submission``); ``submission_refusal`` says why it does.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .claims import unlinked_claims
from .models import BrandPolicy, ClaimField, ModuleVersion, ProhibitedPhrase

# The text fields a reader sees, in page order.
TEXT_FIELDS: tuple[str, ...] = ("headline", "body", "key_message", "call_to_action")
FIELD_LABELS = {**{c.value: str(c.label) for c in ClaimField}, "call_to_action": "Call to action"}


class Kind:
    PROHIBITED_PHRASE = "prohibited_phrase"
    SAFETY_STATEMENT = "missing_safety_statement"
    UNREFERENCED_CLAIM = "unreferenced_claim"
    NUMBERS_DIFFER = "numbers_differ"
    MISSING_ALT_TEXT = "missing_alt_text"


KINDS: tuple[str, ...] = (
    Kind.PROHIBITED_PHRASE,
    Kind.SAFETY_STATEMENT,
    Kind.UNREFERENCED_CLAIM,
    Kind.NUMBERS_DIFFER,
    Kind.MISSING_ALT_TEXT,
)
SEVERITIES: tuple[str, ...] = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    """One thing the checks found: its kind, how serious, what it is in words, and where."""

    kind: str
    severity: str  # "error" (a reviewer will refuse it) or "warning" (worth a look)
    message: str
    field: str | None = None
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """``phrase`` as whole words, any case, any run of white space between its words:
    "safe" matches "Safe," but not "unsafe" or "safety"."""
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def policy_of(version: ModuleVersion) -> BrandPolicy:
    """The brand's policy, or the defaults (nothing required, nothing blocks)."""
    policy = BrandPolicy.objects.filter(brand_id=version.module.brand_id).first()
    return policy or BrandPolicy(brand_id=version.module.brand_id)


def _prohibited(version: ModuleVersion) -> list[Finding]:
    module = version.module
    phrases = ProhibitedPhrase.objects.filter(brand_id=module.brand_id).filter(
        market__isnull=True
    ) | ProhibitedPhrase.objects.filter(brand_id=module.brand_id, market_id=module.market_id)
    out: list[Finding] = []
    for entry in phrases.select_related("market").order_by("phrase", "pk"):
        pattern = phrase_pattern(entry.phrase)
        where = f" in {entry.market.code}" if entry.market else ""
        why = f": {entry.reason}" if entry.reason else ""
        for field in TEXT_FIELDS:
            for match in pattern.finditer(getattr(version, field) or ""):
                out.append(
                    Finding(
                        Kind.PROHIBITED_PHRASE,
                        "error",
                        f'The {FIELD_LABELS[field].lower()} says "{match.group(0)}", '
                        f"which {module.brand.name} content may not say{where}{why}.",
                        field,
                        match.start(),
                        match.end(),
                    )
                )
    return out


def _safety(version: ModuleVersion, policy: BrandPolicy) -> list[Finding]:
    if not policy.requires_safety_statement:
        return []
    phrases = policy.safety_phrase_list()
    for field in TEXT_FIELDS:
        value = getattr(version, field) or ""
        if any(phrase_pattern(p).search(value) for p in phrases):
            return []
    expected = "; ".join(f'"{p}"' for p in phrases) if phrases else "none configured"
    return [
        Finding(
            Kind.SAFETY_STATEMENT,
            "error",
            f"{version.module.brand.name} requires a fair-balance or safety statement "
            f"and this version has none (what counts: {expected}).",
        )
    ]


def _unreferenced(version: ModuleVersion) -> list[Finding]:
    return [
        Finding(
            Kind.UNREFERENCED_CLAIM,
            "warning",
            f'"{claim.text}" {claim.reason} and no reference supports it.',
            claim.field,
            claim.start,
            claim.end,
        )
        for claim in unlinked_claims(version)
    ]


def _numbers(version: ModuleVersion) -> list[Finding]:
    from content_modules.affinity.reuse import find_reuse, percent

    others = ModuleVersion.objects.approved_now().filter(module__brand_id=version.module.brand_id)
    if not others.exclude(module_id=version.module_id).exists():
        return []  # nothing approved to resemble: no need to load the model
    reuse = find_reuse(version=version, k=3)
    if reuse.verdict != "numbers_differ" or reuse.match is None:
        return []
    match = reuse.match
    approved = match.version
    figures = ", ".join(d.describe() for d in match.differences)
    return [
        Finding(
            Kind.NUMBERS_DIFFER,
            "error",
            f"This text is {percent(match.score)}% like approved module {approved.module_id} "
            f'("{approved.title}", version {approved.number}) but its figures differ: '
            f"{figures}. A changed figure is a new claim that needs its own reference.",
        )
    ]


def _alt_text(version: ModuleVersion) -> list[Finding]:
    if version.image_id is None or version.image_alt.strip():
        return []
    return [
        Finding(
            Kind.MISSING_ALT_TEXT,
            "warning",
            "The image has no alt text of its own; screen readers will read the headline "
            "instead. Describe what the image shows.",
            "image_alt",
        )
    ]


def run_checks(version: ModuleVersion, policy: BrandPolicy | None = None) -> list[Finding]:
    """Every pre-review finding for ``version``, most serious kinds first.

    Comparing figures with the approved modules costs one embedding when the version's
    is not stored yet.
    """
    policy = policy or policy_of(version)
    findings = [
        *_prohibited(version),
        *_safety(version, policy),
        *_numbers(version),
        *_unreferenced(version),
        *_alt_text(version),
    ]
    return findings


def submission_refusal(version: ModuleVersion) -> str | None:
    """Why the brand's policy refuses to submit ``version`` (None when it may go)."""
    policy = policy_of(version)
    if not policy.checks_block_submission:
        return None
    findings = run_checks(version, policy)
    if not findings:
        return None
    kinds = list(dict.fromkeys(f.kind for f in findings))
    return (
        f"{version.module.brand.name} does not accept a submission with pre-review findings; "
        f"{len(findings)} found ({', '.join(kinds)}). First: {findings[0].message}"
    )


def checks_context(version: ModuleVersion) -> dict:
    """Template context for ``library/_quickcheck.html``."""
    policy = policy_of(version)
    return {
        "quick_checks": run_checks(version, policy),
        "quick_checks_block": policy.checks_block_submission,
    }
