"""Which arm of which running experiment one request follows: a hash, no write.

An HCP's place in an experiment is ``sha256(f"{experiment_id}:{external_id}")``
read as a uniform number u in [0, 1): below ``holdout`` it is the holdout
(the plain model, logged as arm "holdout"), otherwise the rest of the unit
interval is split equally between the arms, in order. The same HCP lands in
the same arm in every process, after every restart, and nothing is stored
until a recommendation is logged with its experiment and arm.

The running experiments are few and kept per process. Each recommendation's
snapshot query reads the ``ExperimentGeneration`` row with everything else it
reads (``delivery.services._snapshot``), so a started or stopped experiment is
noticed by the next request in every process, for no extra query.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from .models import HOLDOUT_ARM, Experiment, ExperimentGeneration, Policy, Status

_TWO_64 = float(2**64)
READ = "read"  # the head was not read with the snapshot: read it here


@dataclass(frozen=True)
class Arm:
    name: str
    policy: str
    modules: frozenset[int]


@dataclass(frozen=True)
class Running:
    """A running experiment as the request path needs it."""

    id: int
    holdout: float
    arms: tuple[Arm, ...]
    brand: str | None
    market: str | None
    channel: str | None
    microsegment: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The arm one HCP follows in one experiment."""

    experiment_id: int
    arm: str
    policy: str
    modules: frozenset[int]

    def as_answer(self) -> dict:
        return {"id": self.experiment_id, "arm": self.arm}


HOLDOUT = Arm(HOLDOUT_ARM, Policy.MODEL, frozenset())

_UNLOADED = object()
_state: dict = {"key": _UNLOADED, "running": ()}
_lock = threading.Lock()


def unit(experiment_id: int, external_id: str) -> float:
    """The HCP's uniform number in [0, 1) for one experiment."""
    digest = hashlib.sha256(f"{experiment_id}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_64


def arm_for(experiment: Running, external_id: str) -> Arm:
    """The arm (or the holdout) of one HCP."""
    u = unit(experiment.id, external_id)
    if u < experiment.holdout:
        return HOLDOUT
    n = len(experiment.arms)
    i = int((u - experiment.holdout) / (1.0 - experiment.holdout) * n)
    return experiment.arms[min(i, n - 1)]


def _load() -> tuple[Running, ...]:
    return tuple(
        Running(
            id=e.pk,
            holdout=e.holdout,
            arms=tuple(
                Arm(a["name"], a["policy"], frozenset(int(m) for m in a.get("modules") or ()))
                for a in e.arms
            ),
            brand=e.brand,
            market=e.market,
            channel=e.channel,
            microsegment=e.microsegment,
        )
        for e in Experiment.objects.filter(status=Status.RUNNING).order_by("id")
    )


def running(head=READ) -> tuple[Running, ...]:
    """The running experiments, reloaded only when the generation ``head`` moved."""
    if head == READ:
        head = ExperimentGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    if _state["key"] is not _UNLOADED and _state["key"] == head:
        return _state["running"]
    with _lock:
        loaded = _load()
        _state.update(key=head, running=loaded)
    return loaded


def forget() -> None:
    """Drop this process's copy (tests; the generation check makes it unnecessary)."""
    _state.update(key=_UNLOADED, running=())


def matches(
    experiment: Running,
    *,
    brand: str | None,
    market: str | None,
    channels: list[str | None],
    microsegment: str | None = None,
) -> bool:
    """The request falls in the experiment's traffic: each dimension it names is the
    request's (a recommendation's channel, or one of a next best action's channels)."""
    if experiment.brand is not None and experiment.brand != brand:
        return False
    if experiment.market is not None and experiment.market != market:
        return False
    if experiment.microsegment is not None and experiment.microsegment != microsegment:
        return False
    return experiment.channel is None or experiment.channel in channels


def assign(
    head,
    *,
    external_id: str,
    brand: str | None,
    market: str | None,
    channels: list[str | None],
    microsegment: str | None = None,
) -> Assignment | None:
    """The arm this request follows, or None when no running experiment covers it.

    Running experiments never share traffic (``actions.experiment_create``), so
    at most one matches.
    """
    for experiment in running(head):
        if matches(
            experiment, brand=brand, market=market, channels=channels, microsegment=microsegment
        ):
            arm = arm_for(experiment, external_id)
            return Assignment(experiment.id, arm.name, arm.policy, arm.modules)
    return None
