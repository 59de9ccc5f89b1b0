"""Demo data: vocabularies, brands, users per role, modules in every state, HCPs, events.

Idempotent: a second run finds what the first made (users by username, modules
by their seed key in the first version's title) and only refreshes passwords,
so the printed logins always work.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from content_modules.accounts.roles import Role
from content_modules.accounts.tokens import token_issue, token_revoke, tokens_of
from content_modules.affinity.models import HCP, EngagementEvent, EventType
from content_modules.library.models import (
    Brand,
    Channel,
    Market,
    Module,
    ModuleVersion,
    Reference,
    Tag,
    TagKind,
    VersionStatus,
)
from content_modules.library.services import VersionContent, module_create, module_edit
from content_modules.review.models import (
    TASK_DECIDED,
    Review,
    ReviewStatus,
    ReviewTask,
    Signature,
    TaskStatus,
)
from content_modules.review.services import (
    add_business_days,
    module_withdraw,
    task_decide,
    version_submit,
)

VOCABULARY = {
    TagKind.MESSAGE: [
        ("efficacy", "Efficacy"),
        ("safety", "Safety"),
        ("dosing", "Dosing"),
        ("mechanism-of-action", "Mechanism of action"),
        ("access", "Access and reimbursement"),
        ("patient-support", "Patient support"),
    ],
    TagKind.THEME: [
        ("outcomes", "Outcomes"),
        ("quality-of-life", "Quality of life"),
        ("adherence", "Adherence"),
        ("real-world-evidence", "Real-world evidence"),
        ("convenience", "Convenience"),
        ("guidelines", "Guidelines"),
    ],
    TagKind.TONALITY: [
        ("clinical", "Clinical"),
        ("empathetic", "Empathetic"),
        ("urgent", "Urgent"),
        ("conversational", "Conversational"),
    ],
    TagKind.FORMAT: [
        ("text", "Text"),
        ("image", "Image"),
        ("infographic", "Infographic"),
        ("video", "Video"),
        ("quote", "Quote"),
        ("chart", "Chart"),
    ],
}

BRANDS = [
    ("cardiozen", "CardioZen", "heart failure", "cardiology"),
    ("neurolift", "NeuroLift", "migraine", "neurology"),
]
MARKETS = [("UK", "United Kingdom"), ("DE", "Germany"), ("US", "United States")]

# password per demo user; the README lists them and seed_demo prints them.
USERS = [
    ("author", "Ada", "Author", Role.AUTHOR, "author-demo-2026"),
    ("author2", "Arlo", "Writer", Role.AUTHOR, "author-demo-2026"),
    ("medical", "Mia", "Medical", Role.MEDICAL, "medical-demo-2026"),
    ("legal", "Leo", "Legal", Role.LEGAL, "legal-demo-2026"),
    ("regulatory", "Rita", "Regulatory", Role.REGULATORY, "regulatory-demo-2026"),
    ("engine", "Engine", "Service", Role.ENGINE, "engine-demo-2026"),
    ("admin", "Ava", "Admin", Role.ADMIN, "admin-demo-2026"),
]

# Key message and body fragments per message tag: {drug} {condition} are filled per brand.
MESSAGES = {
    "efficacy": (
        "{drug} reduced hospitalisation for {condition} by 24% versus placebo.",
        "In a 12-month randomised trial of 4,800 patients, {drug} cut hospital "
        "admissions for {condition} by almost a quarter compared with placebo.",
    ),
    "safety": (
        "{drug} had a discontinuation rate due to adverse events similar to placebo.",
        "Across pooled trials, adverse events leading to discontinuation of {drug} "
        "were no more frequent than with placebo; the most common was mild dizziness.",
    ),
    "dosing": (
        "{drug} is taken once daily, with or without food.",
        "One tablet of {drug} a day, at any time, with or without food. No titration "
        "is needed for most adults with {condition}.",
    ),
    "mechanism-of-action": (
        "{drug} acts on the underlying pathway that drives {condition}.",
        "{drug} selectively blocks the receptor that sustains {condition}, which "
        "explains its early and lasting effect.",
    ),
    "access": (
        "{drug} is reimbursed for adults with {condition} who meet the criteria.",
        "Your patients with {condition} can access {drug} through standard "
        "reimbursement; prior authorisation takes one short form.",
    ),
    "patient-support": (
        "The {drug} support programme helps patients with {condition} stay on therapy.",
        "Nurse calls, reminders and a companion app help patients living with "
        "{condition} take {drug} as prescribed.",
    ),
}

TONE_OPENERS = {
    "clinical": "Data summary:",
    "empathetic": "For patients who are tired of living around {condition}:",
    "urgent": "Do not wait:",
    "conversational": "Here is the short version:",
}

CTAS = ["Read the full study", "See the prescribing information", "Request a rep visit"]

SPECIALTIES = ["cardiology", "neurology", "general-practice", "internal-medicine"]
SEGMENTS = ["digital-first", "traditional", "high-prescriber", "academic"]
REGIONS = ["UK-London", "UK-North", "DE-Berlin", "DE-Bavaria", "US-East", "US-West"]
CHANNEL_SLUGS = ["email", "rep_email", "web", "rep_visit", "webinar"]


ENGINE_DEMO_LABEL = "seed_demo"


class Command(BaseCommand):
    help = "Create demo vocabularies, users per role, modules in every state, HCPs and events."

    def add_arguments(self, parser):
        parser.add_argument("--hcps", type=int, default=300, help="number of demo HCPs")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--no-train",
            dest="train",
            action="store_false",
            help="skip training the affinity model (through the gate) on the demo events",
        )

    def handle(self, *args, **options):
        # The workflow notifies authors and owners by email; for demo data those
        # messages would only bury the printed logins, so they go to memory.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            self._seed(options)

    def _seed(self, options):
        self.seed = options["seed"]
        users = self._users()
        self._vocabulary()
        refs = self._references(users["author"])
        created = self._modules(users, refs)
        n_hcps = self._hcps(options["hcps"])
        n_events = self._events()
        model = self._train() if options["train"] else None
        self._print_summary(users, created, n_hcps, n_events)
        if model is not None:
            state = "active" if model.is_active else "not active"
            self.stdout.write(
                f"  affinity model {model.model_version} ({state}): {model.status}, {model.reason}"
            )

    # --- users -------------------------------------------------------------------------------

    def _users(self) -> dict[str, User]:
        users = {}
        for username, first, last, role, password in USERS:
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@demo.test"},
            )
            user.set_password(password)
            if role == Role.ADMIN:
                user.is_staff = user.is_superuser = True
            user.save()
            user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _engine_token(self, engine: User) -> str:
        """A fresh demo token for the engine (only hashes are stored, so the last
        run's secret cannot be printed again); the last run's token is revoked."""
        for old in tokens_of(engine).filter(name=ENGINE_DEMO_LABEL):
            token_revoke(actor=engine, token_id=old.pk)
        return token_issue(user=engine, name=ENGINE_DEMO_LABEL)[1]

    def _vocabulary(self) -> None:
        for kind, items in VOCABULARY.items():
            for slug, label in items:
                Tag.objects.update_or_create(kind=kind, slug=slug, defaults={"label": label})
        for slug, name, _condition, _spec in BRANDS:
            Brand.objects.update_or_create(slug=slug, defaults={"name": name})
        for code, name in MARKETS:
            Market.objects.update_or_create(code=code, defaults={"name": name})

    def _references(self, author: User) -> list[Reference]:
        citations = [
            "Smith J, et al. Outcomes of once-daily therapy in chronic disease. "
            "N Engl J Med. 2025;392:1101-12.",
            "Müller K, et al. Pooled safety analysis of five randomised trials. "
            "Lancet. 2025;405:220-31.",
            "Garcia L, et al. Adherence support programmes: a real-world cohort. "
            "BMJ. 2026;380:e07123.",
            "Summary of Product Characteristics, section 4.2 Posology. 2026.",
        ]
        refs = []
        for citation in citations:
            ref, _ = Reference.objects.get_or_create(
                citation=citation,
                defaults={"created_by": author, "url": "https://example.org/reference"},
            )
            refs.append(ref)
        return refs

    # --- modules -----------------------------------------------------------------------------

    def _modules(self, users: dict[str, User], refs: list[Reference]) -> int:
        tags = {(t.kind, t.slug): t for t in Tag.objects.all()}
        channels = {c.slug: c for c in Channel.objects.all()}
        tonalities = [s for s, _ in VOCABULARY[TagKind.TONALITY]]
        formats = [s for s, _ in VOCABULARY[TagKind.FORMAT]]
        themes = [s for s, _ in VOCABULARY[TagKind.THEME]]
        plan = []
        for b_index, (brand_slug, brand_name, condition, _spec) in enumerate(BRANDS):
            market = MARKETS[b_index % 2][0]
            for m_index, (message, (key, body)) in enumerate(MESSAGES.items()):
                for variant in range(4):
                    tone = tonalities[(m_index + variant) % len(tonalities)]
                    fmt = formats[(m_index * 2 + variant) % len(formats)]
                    plan.append(
                        (
                            brand_slug,
                            brand_name,
                            condition,
                            market,
                            message,
                            key,
                            body,
                            tone,
                            fmt,
                            variant,
                        )
                    )
        states = self._state_plan(len(plan))
        created = 0
        roots: dict[tuple[str, str], Module] = {}
        for index, (row, state) in enumerate(zip(plan, states, strict=True)):
            brand_slug, brand_name, condition, market, message, key, body, tone, fmt, variant = row
            seed_key = f"[demo {index + 1:02d}]"
            existing = Module.objects.filter(
                versions__number=1, versions__title__startswith=seed_key
            ).first()
            if existing is not None:
                roots.setdefault((brand_slug, message), existing)
                continue
            fill = {"drug": brand_name, "condition": condition}
            opener = TONE_OPENERS[tone].format(**fill)
            theme_slugs = sorted({themes[(index + k) % len(themes)] for k in range(1 + index % 2)})
            content = VersionContent(
                title=f"{seed_key} {brand_name} {message.replace('-', ' ')} ({tone}, {fmt})",
                headline=f"{opener} {key.format(**fill)}"[:300],
                body=body.format(**fill),
                key_message=key.format(**fill),
                call_to_action=CTAS[index % len(CTAS)],
                message=tags[(TagKind.MESSAGE, message)],
                tonality=tags[(TagKind.TONALITY, tone)],
                format=tags[(TagKind.FORMAT, fmt)],
                themes=[tags[(TagKind.THEME, s)] for s in theme_slugs],
                channels=[channels[s] for s in CHANNEL_SLUGS[: 2 + index % 3]],
                references=[refs[index % len(refs)]]
                if message in {"efficacy", "safety", "dosing"}
                else [],
                expires_on=timezone.localdate() + timedelta(days=200 + 10 * index),
            )
            author = users["author"] if index % 3 else users["author2"]
            with transaction.atomic():
                version = module_create(
                    actor=author,
                    brand=Brand.objects.get(slug=brand_slug),
                    market=Market.objects.get(code=market),
                    content=content,
                    variant_of=roots.get((brand_slug, message)),
                )
                roots.setdefault((brand_slug, message), version.module)
                # One approval in five first went back for changes, as real rounds do.
                self._drive(version, state, users, author, revise_first=index % 5 == 0)
                self._spread_history(version.module, index, len(plan))
            created += 1
        return created

    # --- twelve weeks of review history ------------------------------------------------------

    # Hours a role takes to decide, as (least, spread): legal is the slowest, as in most
    # MLR teams, medical the quickest; each module gets its own figure within the spread.
    ROLE_HOURS = {"medical": (18, 30), "regulatory": (26, 34), "legal": (60, 60)}
    HISTORY_WEEKS = 12

    def _role_hours(self, role: str, index: int, round_index: int) -> float:
        least, spread = self.ROLE_HOURS.get(role, (24, 24))
        step = {"medical": 7, "regulatory": 11, "legal": 13}.get(role, 5)
        return least + ((index + 3 * round_index) * step) % spread + (index % 4) * 0.25

    def _spread_history(self, module: Module, index: int, n: int) -> None:
        """Move the module's review rounds back in time, spread over twelve weeks.

        The workflow ran a moment ago, so every round lasted milliseconds and the
        dashboard read 0.0 h. The review rows (rounds, tasks, signatures and the
        versions' submission and approval times) are moved to a plausible past:
        modules start one after another across the first nine weeks, each role
        decides after its own typical delay, and open rounds were submitted in the
        last week. The audit trail is not rewritten (it is append-only and
        hash-chained): it keeps the true time the demo was seeded.
        """
        now = timezone.now()
        start = now - timedelta(weeks=self.HISTORY_WEEKS)
        cursor = start + timedelta(hours=(9 * 7 * 24) * index / max(n, 1) + 8)
        last_closed = cursor
        reviews = Review.objects.filter(version__module=module).order_by("submitted_at", "id")
        for round_index, review in enumerate(reviews):
            tasks = list(ReviewTask.objects.filter(review=review))
            if review.status == ReviewStatus.OPEN:
                submitted = now - timedelta(days=(index // 3) % 6, hours=2 + index % 5)
                due = add_business_days(submitted, settings.REVIEW_DUE_BUSINESS_DAYS)
                ReviewTask.objects.filter(review=review).update(created_at=submitted, due_at=due)
                Review.objects.filter(pk=review.pk).update(submitted_at=submitted)
                ModuleVersion.objects.filter(pk=review.version_id).update(
                    submitted_at=submitted, status_changed_at=submitted
                )
                continue
            submitted = cursor
            due = add_business_days(submitted, settings.REVIEW_DUE_BUSINESS_DAYS)
            closed = submitted
            for task in tasks:
                decided = None
                if task.status in TASK_DECIDED or task.status == TaskStatus.CANCELLED:
                    hours = self._role_hours(task.role, index, round_index)
                    decided = submitted + timedelta(hours=hours)
                    closed = max(closed, decided)
                ReviewTask.objects.filter(pk=task.pk).update(
                    created_at=submitted, due_at=due, decided_at=decided
                )
                if decided is not None:
                    Signature.objects.filter(task=task).update(signed_at=decided)
            Review.objects.filter(pk=review.pk).update(submitted_at=submitted, closed_at=closed)
            changes: dict = {"submitted_at": submitted, "status_changed_at": closed}
            if review.status == ReviewStatus.APPROVED:
                changes["approved_at"] = closed
            ModuleVersion.objects.filter(pk=review.version_id).update(**changes)
            # A superseded version was superseded when the next one was approved.
            if review.status == ReviewStatus.APPROVED:
                ModuleVersion.objects.filter(
                    module=module, status=VersionStatus.SUPERSEDED, approved_at__lt=closed
                ).update(status_changed_at=closed)
            last_closed = closed
            cursor = closed + timedelta(days=3, hours=index % 7)
        # A withdrawal (signed without a task) came a few days after the approval.
        withdrawn_at = last_closed + timedelta(days=2)
        for signature in Signature.objects.filter(version__module=module, task__isnull=True):
            Signature.objects.filter(pk=signature.pk).update(signed_at=withdrawn_at)
            ModuleVersion.objects.filter(pk=signature.version_id).update(
                status_changed_at=withdrawn_at
            )

    def _state_plan(self, n: int) -> list[str]:
        """Mostly approved content, and every other state at least twice."""
        special = [
            VersionStatus.DRAFT,
            VersionStatus.IN_REVIEW,
            VersionStatus.CHANGES_REQUESTED,
            VersionStatus.REJECTED,
            VersionStatus.WITHDRAWN,
            VersionStatus.EXPIRED,
            VersionStatus.SUPERSEDED,
            "approved+draft",
        ]
        plan: list[str] = [VersionStatus.APPROVED] * n
        for i in range(n):
            if i % 3 == 2:
                plan[i] = special[(i // 3) % len(special)]
        return plan

    def _approve(self, version: ModuleVersion, users: dict[str, User]) -> None:
        version_submit(actor=version.created_by, module=version.module)
        self._approve_open_tasks(version, users)

    def _approve_open_tasks(self, version: ModuleVersion, users: dict[str, User]) -> None:
        """Every role whose task is still open approves (in role order)."""
        for task in ReviewTask.objects.filter(version=version, status=TaskStatus.OPEN).order_by(
            "role"
        ):
            task_decide(
                actor=users[task.role],
                task=task,
                decision="approve",
                password=self._password(task.role),
                checked_reference_ids=list(version.references.values_list("pk", flat=True)),
            )

    def _password(self, username: str) -> str:
        return next(p for u, *_rest, p in USERS if u == username)

    def _drive(
        self,
        version: ModuleVersion,
        state: str,
        users: dict[str, User],
        author: User,
        *,
        revise_first: bool = False,
    ) -> None:
        """Walk the version through the real workflow to reach the planned state."""
        if state == VersionStatus.DRAFT:
            return
        if state == VersionStatus.IN_REVIEW:
            version_submit(actor=author, module=version.module)
            return
        if state == VersionStatus.APPROVED and revise_first:
            self._drive(version, VersionStatus.CHANGES_REQUESTED, users, author)
            version = module_edit(
                actor=author,
                module=version.module,
                changes={"headline": version.headline + " (aligned with the reference)"},
            )
        if state in (VersionStatus.CHANGES_REQUESTED, VersionStatus.REJECTED):
            version_submit(actor=author, module=version.module)
            task = ReviewTask.objects.get(version=version, role="legal", status=TaskStatus.OPEN)
            decision = "request_changes" if state == VersionStatus.CHANGES_REQUESTED else "reject"
            task_decide(
                actor=users["legal"],
                task=task,
                decision=decision,
                comment="The headline overstates the claim; align it with the reference.",
                password=self._password("legal"),
            )
            # The round closes once every role has decided (DESIGN.md's lifecycle).
            self._approve_open_tasks(version, users)
            return
        self._approve(version, users)
        if state == VersionStatus.WITHDRAWN:
            module_withdraw(
                actor=users["regulatory"],
                module=version.module,
                reason="Superseded by updated prescribing information.",
                password=self._password("regulatory"),
            )
        elif state == VersionStatus.EXPIRED:
            # Backdate the expiry so the demo shows content that expired; the
            # expiry job marks it (query-time checks hide it even before that).
            ModuleVersion.objects.filter(pk=version.pk).update(
                expires_on=timezone.localdate() - timedelta(days=1)
            )
            from content_modules.review.services import versions_expire

            versions_expire()
        elif state in (VersionStatus.SUPERSEDED, "approved+draft"):
            draft = module_edit(
                actor=author,
                module=version.module,
                changes={"headline": version.headline + " Updated for 2027."},
            )
            if state == VersionStatus.SUPERSEDED:
                self._approve(draft, users)

    # --- HCPs and events ---------------------------------------------------------------------

    def _hcps(self, n: int) -> int:
        existing = set(HCP.objects.values_list("external_id", flat=True))
        new = []
        for i in range(1, n + 1):
            external_id = f"HCP-{i:04d}"
            if external_id in existing:
                continue
            new.append(
                HCP(
                    external_id=external_id,
                    specialty=SPECIALTIES[i % len(SPECIALTIES)],
                    segment=SEGMENTS[(i // 4) % len(SEGMENTS)],
                    region=REGIONS[i % len(REGIONS)],
                    preferred_channel=["email", "web", "rep_visit"][i % 3],
                    attributes={"years_in_practice": 3 + i % 30},
                )
            )
        HCP.objects.bulk_create(new, batch_size=1000)
        return HCP.objects.count()

    def _events(self) -> int:
        """Two months of engagement drawn from a world with learnable structure.

        ``affinity.synthetic``: group-level tastes (specialty x message, segment x
        tonality), each HCP's own taste over messages and formats, item quality
        and HCP responsiveness, deliveries logged uniformly at random.
        """
        from content_modules.affinity.synthetic import click_probabilities, exposures

        if EngagementEvent.objects.exists():
            return EngagementEvent.objects.count()
        approved = list(
            ModuleVersion.objects.approved_now()
            .select_related("message", "tonality", "format")
            .order_by("pk")
        )
        if not approved:
            return 0
        hcps = list(HCP.objects.order_by("pk"))
        p_click = click_probabilities(
            specialty=[h.specialty for h in hcps],
            segment=[h.segment for h in hcps],
            message=[v.message.slug for v in approved],
            tonality=[v.tonality.slug for v in approved],
            format=[v.format.slug for v in approved],
            seed=self.seed,
        )
        now = timezone.now()
        events: list = []
        for x in exposures(p_click, seed=self.seed):
            hcp, version = hcps[x.hcp], approved[x.item]
            at = now - timedelta(days=x.days_ago)
            base = {
                "hcp": hcp,
                "module_id": version.module_id,
                "version": version,
                "channel": hcp.preferred_channel or "email",
            }
            kinds = [(EventType.DELIVERED, 0)]
            if x.opened:
                kinds.append((EventType.OPENED, 5))
            if x.clicked:
                kinds.append((EventType.CLICKED, 6))
            events.extend(
                EngagementEvent(
                    event_id=uuid.uuid4(),
                    type=kind,
                    occurred_at=at + timedelta(minutes=minutes),
                    **base,
                )
                for kind, minutes in kinds
            )
        EngagementEvent.objects.bulk_create(events, batch_size=2000)
        return len(events)

    def _train(self):
        """Train through the champion/challenger gate, once (a rerun keeps what the first made)."""
        from content_modules.affinity.models import AffinityModel
        from content_modules.affinity.training_runs import affinity_model_train
        from content_modules.errors import DomainError

        latest = AffinityModel.objects.defer("artifact").order_by("-trained_at").first()
        if latest is not None:
            return latest
        try:
            return affinity_model_train(actor=None, evaluate=True)
        except DomainError as exc:
            self.stdout.write(self.style.WARNING(f"  no affinity model trained: {exc.message}"))
            return None

    # --- output ------------------------------------------------------------------------------

    def _print_summary(self, users, created: int, n_hcps: int, n_events: int) -> None:
        counts = {s: ModuleVersion.objects.filter(status=s).count() for s in VersionStatus.values}
        out = self.stdout
        out.write(self.style.SUCCESS("Demo data ready."))
        out.write(
            f"  modules: {Module.objects.count()} ({created} new this run); "
            f"versions by state: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        )
        out.write(f"  HCPs: {n_hcps}; engagement events: {n_events}")
        out.write("")
        out.write("Demo logins (http://127.0.0.1:8000/accounts/login/):")
        for username, first, last, role, password in USERS:
            out.write(f"  {role:<20} {username:<11} password: {password:<22} ({first} {last})")
        token = self._engine_token(users["engine"])
        out.write(f"  engine API token: {token} (a new one each run; the last run's is revoked)")
        out.write(
            "  e.g. curl -H 'Authorization: Token <token>' http://127.0.0.1:8000/api/v1/content"
        )
