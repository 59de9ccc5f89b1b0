"""A family of synthetic worlds for the affinity benchmark: structural variants x seeds.

Plain data and numpy (no Django), so any ranker can be scored on them. Every
world knows the true click probability of every (HCP, module) pair.

What every variant shares:

* **Mixed bodies.** A module's body mixes several statements: a tone opener
  (restates the tonality tag), a claim (restates the message tag), a theme
  line, one or two *topic* sentences and a format line. The topic is said
  only in the words, never tagged, and is a small part of the wording.
* **Paraphrases.** Each topic has many phrasings; a module draws its own.
* **Group and individual taste for topics.** Specialty x topic and segment x
  topic at the group level, and an individual topic taste per HCP with the
  same spread as the group's (``topic_sd``/``indiv_sd``).
* **Tag tastes** at the group level (specialty x message/theme, segment x
  tonality/format), a per-module quality term and a per-HCP responsiveness.
* **Cold HCPs**: ``cold_share`` of the HCPs (a quarter by default) have 0-2
  events; the evaluation set keeps that share.
* **New modules**: ``new_share`` of the modules are never delivered in the log
  (published after it); only their text tells what they are about.
* Uniformly random deliveries (a logging policy that explores), noisy opens,
  clicks drawn from the truth, half the clicks followed by a read.

The variants (``VARIANTS``) change the structure:

* ``mixed``: two topics per module in long mixed bodies, group and individual
  taste equally strong, 40-70 deliveries per warm HCP.
* ``paraphrase``: twelve phrasings per topic, a third of them never seen in
  a delivered module (they appear only in the new modules, which are many).
* ``sparse``: 30-40 deliveries per warm HCP at a click rate near 10%, taste
  mostly individual.
* ``tags``: a control where the topic barely matters (text carries little
  beyond the tags); a text model should not lose there.

``generate(variant, seed)`` is deterministic for a (variant, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

MESSAGES = ["efficacy", "safety", "dosing", "mechanism-of-action", "access", "patient-support"]
THEMES = ["outcomes", "quality-of-life", "adherence", "real-world-evidence"]
TONALITIES = ["clinical", "empathetic", "urgent", "conversational"]
FORMATS = ["text", "image", "infographic", "video"]
SPECIALTIES = ["cardiology", "nephrology", "endocrinology", "general-practice"]
SEGMENTS = ["digital-first", "traditional", "key-opinion-leader"]
REGIONS = ["UK-London", "UK-North", "UK-Midlands", "UK-Scotland", "UK-Wales"]
CHANNELS = ["email", "web", "rep_email"]

# Hidden topics, said only in the words: twelve phrasings each.
TOPICS = {
    "renal": [
        "patients with reduced kidney function",
        "a slower decline in eGFR",
        "people living with chronic kidney disease",
        "fewer patients progressing to dialysis",
        "renal safety in moderate impairment",
        "protecting the kidneys over the long term",
        "albuminuria that keeps creeping up",
        "patients referred to the renal clinic",
        "kidney transplant recipients",
        "stage 3 CKD in primary care",
        "dose adjustment when creatinine clearance falls",
        "nephropathy detected at the annual review",
    ],
    "elderly": [
        "older adults over 75",
        "frail elderly patients",
        "people managing several medicines at once",
        "falls and confusion in later life",
        "care-home residents",
        "grandparents who live alone",
        "patients in their eighties",
        "memory problems that make routines hard",
        "polypharmacy reviews in old age",
        "keeping independence after retirement",
        "the oldest old with many conditions",
        "age-related decline in mobility",
    ],
    "diabetes": [
        "people living with type 2 diabetes",
        "better glycaemic control",
        "a lower HbA1c without weight gain",
        "patients with diabetes and obesity",
        "insulin-treated patients",
        "blood sugar that stays high despite metformin",
        "hypoglycaemia worries at night",
        "newly diagnosed diabetics",
        "the diabetic foot clinic",
        "glucose monitoring made simpler",
        "insulin resistance and the metabolic syndrome",
        "retinal screening in diabetes",
    ],
    "heart-failure": [
        "fewer heart failure hospitalisations",
        "patients with reduced ejection fraction",
        "breathlessness on exertion",
        "worsening heart failure after discharge",
        "NYHA class III patients",
        "ankle swelling and fluid retention",
        "a weak heart pump",
        "readmissions within thirty days of a cardiac stay",
        "patients on loop diuretics",
        "the heart failure nurse service",
        "cardiomyopathy with a dilated ventricle",
        "tiredness from a failing heart",
    ],
    "women": [
        "women of childbearing age",
        "planning a pregnancy",
        "changes around the menopause",
        "differences in response between women and men",
        "breastfeeding mothers",
        "expectant mothers in the second trimester",
        "hormonal contraception and interactions",
        "postmenopausal bone health",
        "polycystic ovary syndrome",
        "female patients under-represented in trials",
        "the antenatal clinic",
        "mothers returning to work after birth",
    ],
    "active": [
        "young, active patients",
        "getting back to sport",
        "working-age adults with busy schedules",
        "patients who travel often",
        "staying fit while on treatment",
        "marathon runners and cyclists",
        "students juggling exams and treatment",
        "shift workers with irregular meals",
        "people who want to keep exercising",
        "a quick return to the gym",
        "professionals who cannot take time off",
        "weekend footballers",
    ],
}
TOPIC_NAMES = list(TOPICS)
TOPIC_FRAMES = [
    "This matters most for {p}.",
    "Think of {p}.",
    "It is especially relevant to {p}.",
    "The data speak to {p}.",
    "Consider what it means for {p}.",
]

CLAIMS = {
    "efficacy": [
        "In the pivotal trial, the primary endpoint improved clearly versus placebo.",
        "Results were significantly better than standard care at twelve months.",
        "Efficacy was shown across every prespecified subgroup.",
    ],
    "safety": [
        "The safety profile was consistent, with few discontinuations.",
        "Adverse events were mostly mild and transient.",
        "No new safety signals emerged in long-term follow-up.",
    ],
    "dosing": [
        "Once-daily dosing with no titration needed.",
        "The dose can be adjusted simply at any visit.",
        "A single tablet, taken with or without food.",
    ],
    "mechanism-of-action": [
        "Its mechanism acts directly on the underlying pathway.",
        "It blocks the receptor that drives the disease process.",
        "A novel mode of action, different from existing options.",
    ],
    "access": [
        "Reimbursement now covers treatment in most areas.",
        "It is on the national formulary with no prior approval.",
        "Patients pay nothing extra at the pharmacy.",
    ],
    "patient-support": [
        "Our nurse-led programme supports patients from the first prescription.",
        "A helpline and app help patients stay on track.",
        "Free home visits are available for new starters.",
    ],
}
TONE_OPENERS = {
    "clinical": ["Data summary:", "Clinical update.", "Key findings in brief."],
    "empathetic": [
        "We know every patient's story is different.",
        "Living with a long-term condition is hard.",
        "Your patients deserve care that understands them.",
    ],
    "urgent": [
        "Act now:",
        "Do not wait to review your patients.",
        "Time matters: read this today.",
    ],
    "conversational": [
        "Here's something you might find useful.",
        "Got a minute? Have a look at this.",
        "We thought you'd like to hear about this.",
    ],
}
THEME_LINES = {
    "outcomes": [
        "Long-term outcomes were followed for three years.",
        "Hard outcomes were the focus of the analysis.",
    ],
    "quality-of-life": [
        "Patients reported a better quality of life day to day.",
        "Wellbeing scores improved over the study.",
    ],
    "adherence": [
        "Simple routines helped people keep taking their treatment.",
        "Persistence on therapy was high.",
    ],
    "real-world-evidence": [
        "Registry data from routine practice confirm the trial results.",
        "Real-world cohorts showed the same benefit.",
    ],
}
FORMAT_LINES = {
    "text": ["Read the full summary below.", "The article sets out the details."],
    "image": ["See the picture for the key figure.", "One image says it all."],
    "infographic": ["Download the infographic.", "The infographic shows it step by step."],
    "video": ["Watch the two-minute video.", "Press play for the short film."],
}


@dataclass(frozen=True)
class Variant:
    """The structural knobs of one kind of world."""

    name: str
    n_modules: int = 300
    n_hcps: int = 2000
    deliveries: tuple[int, int] = (40, 70)  # per warm HCP
    click_rate: float = 0.12  # mean true click probability over all pairs
    cold_share: float = 0.25
    new_share: float = 0.15  # modules never delivered in the log
    phrasings: int = 6  # phrasings per topic in use
    unseen_phrasings: int = 0  # of those, kept out of every delivered module
    topics_per_module: tuple[int, int] = (1, 2)
    topic_sd: float = 0.8  # specialty x topic spread; segment x topic is half of it
    indiv_sd: float = 0.8  # individual topic taste
    tag_sd: float = 0.45  # group tastes for tags (themes and formats at 0.6 of it)
    quality_sd: float = 0.35
    responsiveness_sd: float = 0.5
    days: int = 120


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("mixed", topics_per_module=(2, 2), topic_sd=0.8, indiv_sd=0.9),
        Variant(
            "paraphrase",
            phrasings=12,
            unseen_phrasings=4,
            new_share=0.25,
            topic_sd=0.9,
            indiv_sd=1.0,
        ),
        Variant("sparse", deliveries=(30, 40), click_rate=0.10, topic_sd=0.6, indiv_sd=1.0),
        Variant("tags", topic_sd=0.15, indiv_sd=0.15, tag_sd=0.6),
    )
}
# The variants where text carries what no tag records.
TEXT_HEAVY = ("mixed", "paraphrase", "sparse")


@dataclass
class Module:
    message: int
    tonality: int
    format: int
    themes: list[int]
    topics: list[int]  # hidden
    phrasings: list[int]  # index into TOPICS[topic] per topic
    new: bool  # never delivered in the log
    headline: str
    clauses: list[str]  # the body, one statement per entry
    key_message: str
    call_to_action: str

    @property
    def body(self) -> str:
        return " ".join(self.clauses)

    @property
    def text(self) -> str:
        """The text the product embeds (embeddings.embed_versions joins the same fields)."""
        return "\n".join([self.headline, self.body, self.key_message, self.call_to_action])


@dataclass
class FamilyWorld:
    """One world: modules, HCPs, the truth and the event log, all plain arrays."""

    variant: Variant
    seed: int
    modules: list[Module]
    specialty: np.ndarray  # (n_hcps,) index into SPECIALTIES
    segment: np.ndarray
    region: np.ndarray
    channel: np.ndarray  # preferred channel, index into CHANNELS
    cold: np.ndarray  # bool (n_hcps,)
    truth: np.ndarray  # (n_hcps, n_modules) true click probability
    # The additive parts of the true logit, so tests can check the structure.
    parts: dict[str, np.ndarray] = field(repr=False)
    # The event log: one row per event, sorted by time.
    events: dict[str, np.ndarray] = field(repr=False)
    t0: float = 1.7e9  # epoch seconds of the log's start

    @property
    def n_hcps(self) -> int:
        return len(self.specialty)

    @property
    def n_modules(self) -> int:
        return len(self.modules)

    @property
    def group(self) -> np.ndarray:
        return self.specialty * len(SEGMENTS) + self.segment

    def module_array(self, name: str) -> np.ndarray:
        return np.array([getattr(m, name) for m in self.modules])

    def topic_matrix(self) -> np.ndarray:
        """(modules, topics) weight of each hidden topic in each module, as the truth uses it.

        A module's weights have unit norm, so a two-topic module's preference
        spreads as much as a one-topic module's.
        """
        out = np.zeros((self.n_modules, len(TOPIC_NAMES)))
        for j, m in enumerate(self.modules):
            out[j, m.topics] = 1.0 / np.sqrt(len(m.topics))
        return out

    def group_mean_truth(self) -> np.ndarray:
        """(n_hcps, n_modules): each HCP's row replaced by its group's mean true probability."""
        g = self.group
        out = np.zeros_like(self.truth)
        for value in np.unique(g):
            rows = g == value
            out[rows] = self.truth[rows].mean(axis=0)
        return out

    def evaluation_hcps(
        self, n_warm: int = 600, n_cold: int = 200, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(warm, cold) HCP indices to score: cold a quarter of the set by default."""
        rng = np.random.default_rng(seed)
        warm = np.flatnonzero(~self.cold)
        cold = np.flatnonzero(self.cold)
        warm = np.sort(rng.choice(warm, min(n_warm, len(warm)), replace=False))
        cold = np.sort(rng.choice(cold, min(n_cold, len(cold)), replace=False))
        return warm, cold


EVENT_DELIVERED, EVENT_OPENED, EVENT_CLICKED, EVENT_READ = 0, 1, 2, 3


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _module(rng, variant: Variant, new: bool, seen: np.ndarray, unseen: np.ndarray) -> Module:
    message = int(rng.integers(len(MESSAGES)))
    tonality = int(rng.integers(len(TONALITIES)))
    fmt = int(rng.integers(len(FORMATS)))
    themes = sorted(
        int(t) for t in rng.choice(len(THEMES), size=int(rng.integers(1, 3)), replace=False)
    )
    lo, hi = variant.topics_per_module
    n_topics = int(rng.integers(lo, hi + 1))
    topics = [int(k) for k in rng.choice(len(TOPIC_NAMES), size=n_topics, replace=False)]
    # A new module may use phrasings no delivered module ever used.
    pool = np.concatenate([seen, unseen]) if new and len(unseen) else seen
    phrasings = [int(rng.choice(pool)) for _ in topics]
    topic_clauses = [
        _pick(rng, TOPIC_FRAMES).format(p=TOPICS[TOPIC_NAMES[k]][p])
        for k, p in zip(topics, phrasings, strict=True)
    ]
    clauses = [
        _pick(rng, TONE_OPENERS[TONALITIES[tonality]]),
        _pick(rng, CLAIMS[MESSAGES[message]]),
        topic_clauses[0],
        _pick(rng, THEME_LINES[THEMES[themes[0]]]),
        *topic_clauses[1:],
        _pick(rng, FORMAT_LINES[FORMATS[fmt]]),
    ]
    return Module(
        message=message,
        tonality=tonality,
        format=fmt,
        themes=themes,
        topics=topics,
        phrasings=phrasings,
        new=new,
        headline=f"{MESSAGES[message].replace('-', ' ').capitalize()}: what is new",
        clauses=clauses,
        key_message=_pick(rng, CLAIMS[MESSAGES[message]]),
        call_to_action=_pick(rng, ["Read the evidence summary", "Find out more", "Learn more"]),
    )


def _calibrate(logits: np.ndarray, target: float) -> float:
    """The offset that makes the mean of sigmoid(logits + offset) equal ``target``."""
    lo, hi = -10.0, 10.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if (1.0 / (1.0 + np.exp(-(logits + mid)))).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate(variant: str | Variant, seed: int, **overrides) -> FamilyWorld:
    """One world of the family, deterministic for (variant, seed)."""
    v = VARIANTS[variant] if isinstance(variant, str) else variant
    if overrides:
        v = replace(v, **overrides)
    rng = np.random.default_rng([seed, sum(map(ord, v.name))])
    M, N = v.n_modules, v.n_hcps
    S, G, K = len(SPECIALTIES), len(SEGMENTS), len(TOPIC_NAMES)

    # Which phrasings of each topic this world uses, and which never reach the log.
    per_topic = rng.permutation(12)[: v.phrasings]
    seen, unseen = (
        per_topic[: v.phrasings - v.unseen_phrasings],
        per_topic[v.phrasings - v.unseen_phrasings :],
    )
    new = np.zeros(M, dtype=bool)
    new[rng.choice(M, int(round(v.new_share * M)), replace=False)] = True
    modules = [_module(rng, v, bool(new[j]), seen, unseen) for j in range(M)]

    specialty = rng.integers(S, size=N)
    segment = rng.integers(G, size=N)
    region = rng.integers(len(REGIONS), size=N)
    channel = rng.integers(len(CHANNELS), size=N)
    cold = rng.random(N) < v.cold_share

    m_msg = np.array([m.message for m in modules])
    m_tone = np.array([m.tonality for m in modules])
    m_fmt = np.array([m.format for m in modules])
    m_theme = np.zeros((M, len(THEMES)))
    for j, m in enumerate(modules):
        m_theme[j, m.themes] = 1.0 / len(m.themes)
    m_topic = np.zeros((M, K))
    for j, m in enumerate(modules):
        m_topic[j, m.topics] = 1.0 / np.sqrt(len(m.topics))

    sd = v.tag_sd
    spec_msg = rng.normal(0, sd, (S, len(MESSAGES)))
    spec_theme = rng.normal(0, 0.6 * sd, (S, len(THEMES)))
    seg_tone = rng.normal(0, sd, (G, len(TONALITIES)))
    seg_fmt = rng.normal(0, 0.6 * sd, (G, len(FORMATS)))
    spec_topic = rng.normal(0, v.topic_sd, (S, K))
    seg_topic = rng.normal(0, v.topic_sd / 2, (G, K))
    indiv_topic = rng.normal(0, v.indiv_sd, (N, K))
    quality = rng.normal(0, v.quality_sd, M)
    responsiveness = rng.normal(0, v.responsiveness_sd, N)
    parts = {
        "tags": spec_msg[specialty][:, m_msg]
        + spec_theme[specialty] @ m_theme.T
        + seg_tone[segment][:, m_tone]
        + seg_fmt[segment][:, m_fmt],
        "group_topic": (spec_topic[specialty] + seg_topic[segment]) @ m_topic.T,
        "individual_topic": indiv_topic @ m_topic.T,
        "quality": np.broadcast_to(quality[None, :], (N, M)),
        "responsiveness": np.broadcast_to(responsiveness[:, None], (N, M)),
    }
    logits = sum(parts.values())
    logits = logits + _calibrate(logits, v.click_rate)
    truth = 1.0 / (1.0 + np.exp(-logits))

    # The log: uniform random deliveries of modules published before it ended.
    deliverable = np.flatnonzero(~new)
    # A cold HCP has at most 2 events: none, or one delivery (and maybe its click).
    n_deliveries = np.where(
        cold,
        rng.integers(0, 2, size=N),
        rng.integers(v.deliveries[0], v.deliveries[1] + 1, size=N),
    )
    hcp = np.repeat(np.arange(N), n_deliveries)
    item = np.concatenate(
        [rng.choice(deliverable, size=n, replace=False) for n in n_deliveries if n > 0]
        or [np.zeros(0, dtype=np.int64)]
    )
    t0 = 1.7e9
    when = t0 + rng.uniform(0, v.days * 86400.0, size=len(hcp))
    clicked = rng.random(len(hcp)) < truth[hcp, item]
    opened = (rng.random(len(hcp)) < 0.3) & ~cold[hcp]
    read = clicked & (rng.random(len(hcp)) < 0.5) & ~cold[hcp]
    dwell = rng.uniform(5, 120, size=len(hcp))
    cols = {"hcp": [], "module": [], "t": [], "type": [], "dwell": []}

    def add(mask, kind, delay):
        cols["hcp"].append(hcp[mask])
        cols["module"].append(item[mask])
        cols["t"].append(when[mask] + delay)
        cols["type"].append(np.full(int(mask.sum()), kind, dtype=np.int8))
        cols["dwell"].append(np.where(kind == EVENT_READ, dwell[mask], 0.0))

    everything = np.ones(len(hcp), dtype=bool)
    add(everything, EVENT_DELIVERED, 0.0)
    add(opened, EVENT_OPENED, 1800.0)
    add(clicked, EVENT_CLICKED, 3600.0)
    add(read, EVENT_READ, 3720.0)
    events = {k: np.concatenate(a) for k, a in cols.items()}
    order = np.argsort(events["t"], kind="stable")
    events = {k: a[order] for k, a in events.items()}
    events["channel"] = channel[events["hcp"]].astype(np.int16)
    return FamilyWorld(
        variant=v,
        seed=seed,
        modules=modules,
        specialty=specialty,
        segment=segment,
        region=region,
        channel=channel,
        cold=cold,
        truth=truth,
        parts={k: np.asarray(a) for k, a in parts.items()},
        events=events,
        t0=t0,
    )


def family(seeds: int = 5, variants: tuple[str, ...] | None = None, **overrides):
    """Yield every (variant, seed) world: at least 3 variants x 5 seeds by default."""
    for name in variants or tuple(VARIANTS):
        for seed in range(seeds):
            yield generate(name, seed, **overrides)
