"""Experiment actions: start, stop, archive, list, and the results per arm.

Results join the recommendation log to the events that carry its ids:

- a **delivery** is one (recommendation, module) pair of the experiment with at
  least one ``delivered`` event carrying that recommendation id; logged items
  without a delivered event are not counted (the engine may never have sent
  them), but are shown as ``logged_items``;
- a **click** (the metric's success) is a delivery with at least one event of
  the metric's type (``clicked``; ``opened`` for the open metric) carrying the
  same recommendation id and module; successes on pairs never reported
  delivered are shown apart (``successes_without_delivery``), never in a rate;
- **hcps** are the distinct HCPs served in the arm (logged recommendations).

Stopping ends the assignment; events that arrive later for recommendations
made while it ran still count (a click on Monday's email arrives on Tuesday).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from content_modules.accounts.roles import Role, has_role
from content_modules.affinity.models import EngagementEvent
from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.delivery import catalogue as catalogue_mod
from content_modules.delivery import services as delivery
from content_modules.delivery.models import Recommendation, RecommendationItem
from content_modules.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from content_modules.library.models import Module

from . import stats
from .models import (
    HOLDOUT_ARM,
    METRIC_EVENT,
    Experiment,
    ExperimentGeneration,
    Metric,
    Policy,
    Status,
)

MAX_ARMS = 10
MAX_FIXED_MODULES = 500
MAX_HOLDOUT = 0.5
TRAFFIC = ("brand", "market", "channel", "microsegment")


def can_manage(actor) -> bool:
    """Admins start, stop and archive experiments."""
    return has_role(actor, Role.ADMIN)


def can_read(actor) -> bool:
    """The engine and admins read experiments and their results."""
    return has_role(actor, Role.ADMIN, Role.ENGINE)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


# --- writes -------------------------------------------------------------------------------


@dataclass
class ArmSpec:
    name: str
    policy: str
    modules: list[int]


def _validate_arms(arms: list[ArmSpec]) -> list[dict]:
    if not isinstance(arms, list) or len(arms) < 2:
        raise InvalidInput("An experiment needs at least two arms.", field="arms")
    if len(arms) > MAX_ARMS:
        raise InvalidInput(f"At most {MAX_ARMS} arms.", field="arms")
    seen: set[str] = set()
    out = []
    for i, arm in enumerate(arms):
        name = (arm.name or "").strip()
        if not name:
            raise InvalidInput("Give the arm a name.", field=f"arms.{i}.name")
        if name == HOLDOUT_ARM:
            raise InvalidInput("'holdout' names the holdout; pick another.", field=f"arms.{i}.name")
        if name in seen:
            raise InvalidInput(f"Two arms are named '{name}'.", field=f"arms.{i}.name")
        seen.add(name)
        if arm.policy not in Policy.values:
            raise InvalidInput(
                f"Unknown policy '{str(arm.policy)[:32]}'; one of {', '.join(Policy.values)}.",
                field=f"arms.{i}.policy",
            )
        modules = list(dict.fromkeys(arm.modules or []))
        if arm.policy == Policy.FIXED:
            if not modules:
                raise InvalidInput("A fixed arm names its modules.", field=f"arms.{i}.modules")
            if len(modules) > MAX_FIXED_MODULES:
                raise InvalidInput(
                    f"At most {MAX_FIXED_MODULES} modules.", field=f"arms.{i}.modules"
                )
            known = set(Module.objects.filter(pk__in=modules).values_list("pk", flat=True))
            unknown = [m for m in modules if m not in known]
            if unknown:
                raise InvalidInput(
                    f"Unknown module {unknown[0]}"
                    + (f" (and {len(unknown) - 1} more)." if len(unknown) > 1 else "."),
                    field=f"arms.{i}.modules",
                )
        elif modules:
            raise InvalidInput("Only a fixed arm names modules.", field=f"arms.{i}.modules")
        out.append({"name": name, "policy": str(arm.policy), "modules": modules})
    return out


def _overlaps(a: dict, b: dict) -> bool:
    """Every dimension set in both is the same (a null one matches anything)."""
    return all(a[d] is None or b[d] is None or a[d] == b[d] for d in TRAFFIC)


def _bump(generation: ExperimentGeneration) -> None:
    generation.value = secrets.randbits(62)  # never reused, even after a flush or restore
    generation.save(update_fields=["value"])


def _locked_generation() -> ExperimentGeneration:
    generation = ExperimentGeneration.objects.select_for_update().filter(pk=1).first()
    if generation is None:
        ExperimentGeneration.objects.get_or_create(pk=1)
        generation = ExperimentGeneration.objects.select_for_update().get(pk=1)
    return generation


def experiment_create(
    *,
    actor,
    name: str,
    arms: list[ArmSpec],
    holdout: float = 0.0,
    metric: str = Metric.CLICK,
    brand: str | None = None,
    market: str | None = None,
    channel: str | None = None,
    min_detectable_lift: float | None = None,
    microsegment: str | None = None,
) -> Experiment:
    """Start an experiment on the traffic no running experiment covers."""
    _require(can_manage(actor), "Only administrators may start experiments.")
    if not (name or "").strip():
        raise InvalidInput("Give the experiment a name.", field="name")
    if (
        not isinstance(holdout, int | float)
        or isinstance(holdout, bool)
        or math.isnan(holdout)
        or not 0.0 <= holdout <= MAX_HOLDOUT
    ):
        raise InvalidInput(f"The holdout is a share between 0 and {MAX_HOLDOUT}.", field="holdout")
    if metric not in Metric.values:
        raise InvalidInput(f"Unknown metric; one of {', '.join(Metric.values)}.", field="metric")
    if min_detectable_lift is not None and not (0 < min_detectable_lift < 1):
        raise InvalidInput(
            "An absolute rate difference between 0 and 1, e.g. 0.005.",
            field="min_detectable_lift",
        )
    cat = catalogue_mod.current()
    delivery.check_brand(cat, brand)
    delivery.check_market(cat, market)
    delivery.check_channel(cat, channel)
    arm_rows = _validate_arms(arms)
    if microsegment is not None and not _known_microsegment(microsegment):
        raise InvalidInput(
            f"Unknown microsegment '{str(microsegment)[:16]}' (the active engagement model's "
            "segments, e.g. ms-3).",
            field="microsegment",
        )
    traffic = {
        "brand": brand,
        "market": market,
        "channel": channel,
        "microsegment": microsegment,
    }
    with transaction.atomic():
        # The lock serialises starts, so two overlapping ones cannot both pass the check.
        generation = _locked_generation()
        for other in Experiment.objects.filter(status=Status.RUNNING).order_by("id"):
            if _overlaps(traffic, other.traffic):
                raise InvalidInput(
                    f"Running experiment {other.pk} ('{other.name}') already covers this "
                    f"traffic ({_describe(other.traffic)}); stop it first.",
                    field="traffic",
                )
        experiment = Experiment.objects.create(
            name=name.strip()[:120],
            arms=arm_rows,
            holdout=float(holdout),
            metric=metric,
            brand=brand,
            market=market,
            channel=channel,
            microsegment=microsegment,
            min_detectable_lift=min_detectable_lift,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        _bump(generation)
        audit_record(
            actor=actor,
            action=AuditAction.EXPERIMENT_STARTED,
            obj=experiment,
            data={
                "name": experiment.name,
                "arms": [f"{a['name']}: {a['policy']}" for a in arm_rows],
                "holdout": float(holdout),
                "traffic": _describe(traffic),
            },
        )
    return experiment


def _known_microsegment(key: object) -> bool:
    from content_modules.engagement.models import Microsegment

    return (
        isinstance(key, str)
        and Microsegment.objects.filter(model__is_active=True, key=key).exists()
    )


def _describe(traffic: dict) -> str:
    named = [f"{d} {traffic[d]}" for d in TRAFFIC if traffic[d] is not None]
    return ", ".join(named) or "all requests"


def _transition(*, actor, experiment_id: int, from_status: str, to_status: str) -> Experiment:
    _require(can_manage(actor), "Only administrators may stop or archive experiments.")
    with transaction.atomic():
        generation = _locked_generation()
        experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if experiment is None:
            raise NotFound("No such experiment.", field="id")
        if experiment.status != from_status:
            raise Conflict(
                f"The experiment is {experiment.status}; only a {from_status} one can be "
                f"{to_status}.",
                field="status",
            )
        experiment.status = to_status
        now = timezone.now()
        if to_status == Status.STOPPED:
            experiment.stopped_at = now
        else:
            experiment.archived_at = now
        experiment.save(update_fields=["status", "stopped_at", "archived_at", "updated_at"])
        _bump(generation)
        audit_record(
            actor=actor,
            action=(
                AuditAction.EXPERIMENT_STOPPED
                if to_status == Status.STOPPED
                else AuditAction.EXPERIMENT_ARCHIVED
            ),
            obj=experiment,
            data={"name": experiment.name},
        )
    return experiment


def experiment_stop(*, actor, experiment_id: int) -> Experiment:
    """End a running experiment: its HCPs go back to the plain model at once."""
    return _transition(
        actor=actor,
        experiment_id=experiment_id,
        from_status=Status.RUNNING,
        to_status=Status.STOPPED,
    )


def experiment_archive(*, actor, experiment_id: int) -> Experiment:
    """Hide a stopped experiment from the default list (its results stay readable)."""
    return _transition(
        actor=actor,
        experiment_id=experiment_id,
        from_status=Status.STOPPED,
        to_status=Status.ARCHIVED,
    )


# --- reads --------------------------------------------------------------------------------


def experiment_list(*, actor, status: str | None = None) -> list[Experiment]:
    """Experiments, newest first; archived ones only when asked (``status``: a status or all)."""
    _require(can_read(actor), "Only the engine or administrators may read experiments.")
    qs = Experiment.objects.all()
    if status in (None, ""):
        qs = qs.exclude(status=Status.ARCHIVED)
    elif status != "all":
        if status not in Status.values:
            raise InvalidInput(f"One of {', '.join(Status.values)} or all.", field="status")
        qs = qs.filter(status=status)
    return list(qs)


def experiment_get(*, actor, experiment_id: int) -> Experiment:
    _require(can_read(actor), "Only the engine or administrators may read experiments.")
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None:
        raise NotFound("No such experiment.", field="id")
    return experiment


_DAY_SQL = {
    "postgresql": "((p.delivered_at AT TIME ZONE 'UTC')::date)",
    "sqlite": "date(p.delivered_at)",
}


def _counts(experiment: Experiment) -> dict[str, dict]:
    """Per arm: deliveries and successes per UTC day, and the pairs without delivery."""
    rec, ev = Recommendation._meta.db_table, EngagementEvent._meta.db_table
    day = _DAY_SQL.get(connection.vendor, _DAY_SQL["postgresql"])
    success = METRIC_EVENT[Metric(experiment.metric)]
    sql = (
        "WITH pairs AS ("
        " SELECT r.arm AS arm, e.recommendation_id, e.module_id,"
        " MIN(CASE WHEN e.type = 'delivered' THEN e.occurred_at END) AS delivered_at,"
        " MAX(CASE WHEN e.type = %s THEN 1 ELSE 0 END) AS hit"
        f" FROM {rec} r JOIN {ev} e ON e.recommendation_id = r.id"
        " WHERE r.experiment_id = %s AND e.type IN ('delivered', %s)"
        " GROUP BY r.arm, e.recommendation_id, e.module_id)"
        f" SELECT p.arm, CASE WHEN p.delivered_at IS NULL THEN NULL ELSE {day} END,"
        " COUNT(*), SUM(p.hit) FROM pairs p GROUP BY 1, 2"
    )
    out: dict[str, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [success, experiment.pk, success])
        for arm, d, n, hits in cursor.fetchall():
            entry = out.setdefault(arm, {"daily": {}, "without_delivery": 0})
            if d is None:
                entry["without_delivery"] += int(hits or 0)
            else:
                d = d if isinstance(d, date) else date.fromisoformat(str(d))
                entry["daily"][d] = (int(n), int(hits or 0))
    return out


def _interval(pair: tuple[float, float] | None) -> list[float] | None:
    return [round(pair[0], 6), round(pair[1], 6)] if pair is not None else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def experiment_results(
    *, actor, experiment_id: int, min_detectable_lift: float | None = None
) -> dict:
    """The experiment with per-arm results, lifts against the first arm, verdict and power."""
    experiment = experiment_get(actor=actor, experiment_id=experiment_id)
    if min_detectable_lift is not None and not (0 < min_detectable_lift < 1):
        raise InvalidInput(
            "An absolute rate difference between 0 and 1, e.g. 0.005.",
            field="min_detectable_lift",
        )
    counts = _counts(experiment)
    served = {
        row["arm"]: row
        for row in Recommendation.objects.filter(experiment_id=experiment.pk)
        .values("arm")
        .annotate(hcps=Count("hcp_external_id", distinct=True), recommendations=Count("id"))
    }
    logged = dict(
        RecommendationItem.objects.filter(recommendation__experiment_id=experiment.pk)
        .values_list("recommendation__arm")
        .annotate(n=Count("id"))
    )
    names = [a["name"] for a in experiment.arms]
    days = sorted({d for c in counts.values() for d in c["daily"]})
    totals = {
        name: (
            sum(n for n, _ in counts.get(name, {"daily": {}})["daily"].values()),
            sum(h for _, h in counts.get(name, {"daily": {}})["daily"].values()),
        )
        for name in [*names, HOLDOUT_ARM]
    }

    def arm_result(name: str, policy: str, modules: list[int], reference: bool) -> dict:
        n, s = totals[name]
        n0, s0 = totals[names[0]]
        compare = not reference and name != HOLDOUT_ARM
        lift = (s / n - s0 / n0) if compare and n and n0 else None
        daily = []
        cum_n = cum_s = cum_n0 = cum_s0 = 0
        own = counts.get(name, {"daily": {}})["daily"]
        ref = counts.get(names[0], {"daily": {}})["daily"]
        for d in days:
            dn, ds = own.get(d, (0, 0))
            cum_n, cum_s = cum_n + dn, cum_s + ds
            r0 = ref.get(d, (0, 0))
            cum_n0, cum_s0 = cum_n0 + r0[0], cum_s0 + r0[1]
            row = {
                "date": d,
                "deliveries": dn,
                "clicks": ds,
                "rate": _round(stats.rate(ds, dn)),
                "rate_ci95": _interval(stats.wilson(ds, dn)),
                "cumulative_deliveries": cum_n,
                "cumulative_clicks": cum_s,
                "cumulative_rate": _round(stats.rate(cum_s, cum_n)),
                "cumulative_rate_ci95": _interval(stats.wilson(cum_s, cum_n)),
                "cumulative_rate_cs95": _interval(stats.rate_cs(cum_s, cum_n)),
                "cumulative_lift": None,
                "cumulative_lift_ci95": None,
                "cumulative_lift_cs95": None,
            }
            if compare and cum_n and cum_n0:
                row["cumulative_lift"] = _round(cum_s / cum_n - cum_s0 / cum_n0)
                row["cumulative_lift_ci95"] = _interval(
                    stats.newcombe(cum_s0, cum_n0, cum_s, cum_n)
                )
                row["cumulative_lift_cs95"] = _interval(stats.lift_cs(cum_s0, cum_n0, cum_s, cum_n))
            daily.append(row)
        return {
            "name": name,
            "policy": policy,
            "modules": modules,
            "hcps": served.get(name, {}).get("hcps", 0),
            "recommendations": served.get(name, {}).get("recommendations", 0),
            "logged_items": logged.get(name, 0),
            "deliveries": n,
            "clicks": s,
            "successes_without_delivery": counts.get(name, {}).get("without_delivery", 0),
            "rate": _round(stats.rate(s, n)),
            "rate_ci95": _interval(stats.wilson(s, n)),
            "rate_cs95": _interval(stats.rate_cs(s, n)),
            "lift": _round(lift),
            "lift_ci95": _interval(stats.newcombe(s0, n0, s, n)) if compare else None,
            "lift_cs95": _interval(stats.lift_cs(s0, n0, s, n)) if compare else None,
            "daily": daily,
        }

    arms = [
        arm_result(a["name"], a["policy"], list(a.get("modules") or []), i == 0)
        for i, a in enumerate(experiment.arms)
    ]
    holdout = (
        arm_result(HOLDOUT_ARM, Policy.MODEL, [], False)
        if experiment.holdout > 0 or HOLDOUT_ARM in served
        else None
    )
    # The verdict reads the always-valid interval, running or stopped: whenever the
    # results were looked at, and whenever it was stopped, it keeps its 95%.
    sentences = [
        stats.verdict(names[0], a["name"], a["lift"], _pair(a["lift_cs95"])) for a in arms[1:]
    ]
    mde = min_detectable_lift if min_detectable_lift is not None else experiment.min_detectable_lift
    return {
        **experiment_summary(experiment),
        "arms": arms,
        "holdout_results": holdout,
        "verdict": "; ".join(sentences),
        "verdict_basis": "lift_cs95",
        "methods": METHODS,
        "power": _power(totals, names, mde),
        "counting": COUNTING,
    }


def _pair(value: list[float] | None) -> tuple[float, float] | None:
    return (value[0], value[1]) if value is not None else None


def _power(totals: dict, names: list[str], mde: float | None) -> dict:
    n0, s0 = totals[names[0]]
    baseline = s0 / n0 if n0 else None
    fewest = min(totals[name][0] for name in names)
    needed = (
        stats.sample_size_per_arm(baseline, mde)
        if baseline is not None and mde is not None
        else None
    )
    detectable = stats.detectable_lift(baseline, fewest) if baseline is not None else None
    return {
        "alpha": stats.ALPHA,
        "power": stats.POWER,
        "two_sided": True,
        "baseline_rate": _round(baseline),
        "min_detectable_lift": mde,
        "sample_size_per_arm": needed,
        "deliveries_per_arm_so_far": fewest,
        "enough": None if needed is None else fewest >= needed,
        "detectable_lift_now": _round(detectable),
    }


METHODS = {
    "rate_ci95": "Wilson score interval (fixed sample size)",
    "lift": "absolute difference of rates, arm minus the first arm",
    "lift_ci95": "Newcombe hybrid score interval (method 10), fixed sample size",
    "rate_cs95": "always-valid: asymptotic confidence sequence (Waudby-Smith et al. 2023) "
    "with the two-sided normal-mixture boundary of Howard et al. 2021, tuned for "
    f"{stats.CS_TUNED_FOR} deliveries",
    "lift_cs95": "always-valid: the same confidence sequence on both arms' deliveries",
    "verdict": "from lift_cs95, so it holds however often the results are read",
    "sample_size_per_arm": "two proportions, normal approximation, alpha 0.05 two-sided, "
    "power 0.8, baseline = the first arm's rate",
    "caveat": "deliveries are treated as independent; many per HCP make intervals too narrow",
}
COUNTING = (
    "A delivery is a (recommendation, module) pair of this experiment with a delivered event "
    "carrying its recommendation_id; a click is such a delivery with a success event "
    "(the metric's type) carrying the same id and module. Events for recommendations made "
    "while the experiment ran keep counting after it stops."
)


def experiment_summary(experiment: Experiment) -> dict:
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "status": experiment.status,
        "arms": [
            {"name": a["name"], "policy": a["policy"], "modules": list(a.get("modules") or [])}
            for a in experiment.arms
        ],
        "holdout": experiment.holdout,
        "metric": experiment.metric,
        "brand": experiment.brand,
        "market": experiment.market,
        "channel": experiment.channel,
        "microsegment": experiment.microsegment,
        "min_detectable_lift": experiment.min_detectable_lift,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
        "archived_at": experiment.archived_at,
    }
