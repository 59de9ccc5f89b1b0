"""A synthetic world for the affinity benchmark, with the true engagement probability of every pair.

Design (so that the benchmark can tell a good model from a popularity table):

* Modules carry tags (message, themes, tonality, format) AND a hidden topic
  that no tag records: it is only in the wording ("patients with reduced
  kidney function", "older adults over 75", ...). Sentences are real English
  built from templates, so the text embedding has to recover the topic.
* HCPs have a specialty and a segment (12 groups). A group's taste is
  additive: specialty x message, specialty x theme, segment x tonality,
  segment x format, and - strongest - specialty x hidden topic.
* Each HCP adds an individual taste: a preference over hidden topics and a
  smaller one over tonality.
* A share of HCPs is cold: a single delivery (so at most 2 events).
* Deliveries are uniform at random (a logging policy that explores), opens
  are noise (30% whatever the interest), clicks follow the true probability,
  half the clicks are followed by a read with its dwell time.

``World.truth`` is the (HCP x module) matrix of true click probabilities.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

MESSAGES = ["efficacy", "safety", "dosing", "mechanism-of-action", "access", "patient-support"]
THEMES = ["outcomes", "quality-of-life", "adherence", "real-world-evidence"]
TONALITIES = ["clinical", "empathetic", "urgent", "conversational"]
FORMATS = ["text", "image", "infographic", "video"]
SPECIALTIES = ["cardiology", "nephrology", "endocrinology", "general-practice"]
SEGMENTS = ["digital-first", "traditional", "key-opinion-leader"]
REGIONS = ["UK-London", "UK-North", "UK-Midlands", "UK-Scotland", "UK-Wales"]
CHANNELS = ["email", "web", "rep_email"]

# Hidden topics: said only in the words, never tagged.
TOPICS = {
    "renal": [
        "patients with reduced kidney function",
        "a slower decline in eGFR",
        "chronic kidney disease",
        "fewer patients progressing to dialysis",
        "renal safety in moderate impairment",
    ],
    "elderly": [
        "older adults over 75",
        "frail elderly patients",
        "people managing several medicines at once",
        "falls and confusion in later life",
        "care-home residents",
    ],
    "diabetes": [
        "people living with type 2 diabetes",
        "better glycaemic control",
        "a lower HbA1c without weight gain",
        "patients with diabetes and obesity",
        "insulin-treated patients",
    ],
    "heart-failure": [
        "fewer heart failure hospitalisations",
        "patients with reduced ejection fraction",
        "breathlessness on exertion",
        "worsening heart failure after discharge",
        "NYHA class III patients",
    ],
    "women": [
        "women of childbearing age",
        "planning a pregnancy",
        "changes around the menopause",
        "differences in response between women and men",
        "breastfeeding mothers",
    ],
    "active": [
        "young, active patients",
        "getting back to sport",
        "working-age adults with busy schedules",
        "patients who travel often",
        "staying fit while on treatment",
    ],
}
TOPIC_NAMES = list(TOPICS)

MESSAGE_SENTENCES = {
    "efficacy": "In the pivotal trial, results were clearly better for {topic}.",
    "safety": "The safety profile was consistent for {topic}, with few discontinuations.",
    "dosing": "Once-daily dosing can be adjusted simply for {topic}.",
    "mechanism-of-action": "Its mechanism acts on the pathway that matters for {topic}.",
    "access": "Reimbursement now covers treatment for {topic} in most areas.",
    "patient-support": "Our nurse-led programme supports {topic} from the first prescription.",
}
TONE_OPENERS = {
    "clinical": "Data summary:",
    "empathetic": "We know every patient's story is different.",
    "urgent": "Act now:",
    "conversational": "Here's something you might find useful.",
}
THEME_SENTENCES = {
    "outcomes": "Long-term outcomes were followed for three years.",
    "quality-of-life": "Patients reported a better quality of life day to day.",
    "adherence": "Simple routines helped people keep taking their treatment.",
    "real-world-evidence": "Registry data from routine practice confirm the trial results.",
}


@dataclass
class WorldModule:
    message: str
    themes: list[str]
    tonality: str
    format: str
    topic: int
    title: str
    headline: str
    body: str
    key_message: str
    call_to_action: str


@dataclass
class WorldHCP:
    external_id: str
    specialty: str
    segment: str
    region: str
    preferred_channel: str
    cold: bool


@dataclass
class World:
    modules: list[WorldModule]
    hcps: list[WorldHCP]
    truth: np.ndarray  # (n_hcps, n_modules) true click probability
    events: list[dict]  # API event payloads with "module" as the module's index


def _text(rng: np.random.Generator, message: str, themes: list[str], tone: str, topic: int) -> dict:
    phrases = TOPICS[TOPIC_NAMES[topic]]
    a, b = rng.choice(len(phrases), 2, replace=False)
    body = " ".join(
        [
            TONE_OPENERS[tone],
            MESSAGE_SENTENCES[message].format(topic=phrases[a]),
            THEME_SENTENCES[themes[0]],
            f"This matters most for {phrases[b]}.",
        ]
    )
    return {
        "title": f"{message} / {TOPIC_NAMES[topic]} / {tone}",
        "headline": f"What changes for {phrases[a]}",
        "body": body,
        "key_message": MESSAGE_SENTENCES[message].format(topic=phrases[b]),
        "call_to_action": "Read the evidence summary",
    }


def generate(
    *,
    n_modules: int = 400,
    n_hcps: int = 3000,
    cold_share: float = 0.3,
    deliveries: tuple[int, int] = (20, 60),
    days: int = 120,
    seed: int = 42,
    now: datetime | None = None,
) -> World:
    """Build the world and its event log (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    modules = []
    for _ in range(n_modules):
        message = str(rng.choice(MESSAGES))
        themes = [str(t) for t in rng.choice(THEMES, size=int(rng.integers(1, 3)), replace=False)]
        tone = str(rng.choice(TONALITIES))
        fmt = str(rng.choice(FORMATS))
        topic = int(rng.integers(len(TOPIC_NAMES)))
        modules.append(
            WorldModule(
                message, themes, tone, fmt, topic, **_text(rng, message, themes, tone, topic)
            )
        )
    hcps = []
    for i in range(n_hcps):
        hcps.append(
            WorldHCP(
                external_id=f"W-{i:06d}",
                specialty=str(rng.choice(SPECIALTIES)),
                segment=str(rng.choice(SEGMENTS)),
                region=str(rng.choice(REGIONS)),
                preferred_channel=str(rng.choice(CHANNELS)),
                cold=bool(rng.random() < cold_share),
            )
        )
    # The truth: additive group tastes plus individual tastes, on the logit scale.
    S, G, K = len(SPECIALTIES), len(SEGMENTS), len(TOPIC_NAMES)
    spec_msg = rng.normal(0, 0.5, (S, len(MESSAGES)))
    spec_theme = rng.normal(0, 0.3, (S, len(THEMES)))
    seg_tone = rng.normal(0, 0.5, (G, len(TONALITIES)))
    seg_fmt = rng.normal(0, 0.3, (G, len(FORMATS)))
    spec_topic = rng.normal(0, 0.9, (S, K))
    indiv_topic = rng.normal(0, 0.9, (n_hcps, K))
    indiv_tone = rng.normal(0, 0.3, (n_hcps, len(TONALITIES)))
    quality = rng.normal(0, 0.2, n_modules)
    s_idx = np.array([SPECIALTIES.index(h.specialty) for h in hcps])
    g_idx = np.array([SEGMENTS.index(h.segment) for h in hcps])
    m_msg = np.array([MESSAGES.index(m.message) for m in modules])
    m_tone = np.array([TONALITIES.index(m.tonality) for m in modules])
    m_fmt = np.array([FORMATS.index(m.format) for m in modules])
    m_topic = np.array([m.topic for m in modules])
    m_theme = np.zeros((n_modules, len(THEMES)))
    for j, m in enumerate(modules):
        for t in m.themes:
            m_theme[j, THEMES.index(t)] = 1.0 / len(m.themes)
    logits = (
        -2.7
        + spec_msg[s_idx][:, m_msg]
        + (spec_theme[s_idx] @ m_theme.T)
        + seg_tone[g_idx][:, m_tone]
        + seg_fmt[g_idx][:, m_fmt]
        + spec_topic[s_idx][:, m_topic]
        + indiv_topic[:, m_topic]
        + indiv_tone[:, m_tone]
        + quality[None, :]
    )
    truth = 1.0 / (1.0 + np.exp(-logits))

    events: list[dict] = []
    start = now - timedelta(days=days)
    for i, h in enumerate(hcps):
        n = 1 if h.cold else int(rng.integers(deliveries[0], deliveries[1] + 1))
        items = rng.choice(n_modules, size=min(n, n_modules), replace=False)
        for j in items:
            when = start + timedelta(seconds=float(rng.uniform(0, days * 86400)))
            events.append(_event(h, j, "delivered", when))
            clicked = rng.random() < truth[i, j]
            if not h.cold and rng.random() < 0.3:
                events.append(_event(h, j, "opened", when + timedelta(minutes=30)))
            if clicked:
                events.append(_event(h, j, "clicked", when + timedelta(hours=1)))
                if not h.cold and rng.random() < 0.5:
                    ev = _event(h, j, "read", when + timedelta(hours=1, minutes=2))
                    ev["dwell_seconds"] = float(rng.uniform(5, 120))
                    events.append(ev)
    events.sort(key=lambda e: e["occurred_at"])
    return World(modules=modules, hcps=hcps, truth=truth, events=events)


def _event(h: WorldHCP, module_index: int, kind: str, when: datetime) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "hcp": h.external_id,
        "module": int(module_index),
        "type": kind,
        "occurred_at": when.isoformat().replace("+00:00", "Z"),
        "channel": h.preferred_channel,
        "recommendation_id": None,
        "dwell_seconds": None,
    }
