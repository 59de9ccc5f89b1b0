"""Experiment assignment cost per recommendation (issue 15: under 0.5 ms).

    .venv/bin/python bench/assignment_bench.py

Uses its own SQLite database in a temporary folder: starts one running experiment on
brand x channel traffic, then times ``assignment.assign`` for 20,000 distinct HCPs
(the per-request work: the cached running set, matching the traffic, hashing the
HCP's id into an arm), and the same with no experiment running.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    folder = tempfile.mkdtemp()
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from content_modules.experiments import assignment
    from content_modules.experiments.actions import ArmSpec, experiment_create
    from content_modules.experiments.models import ExperimentGeneration
    from tests.factories import ensure_vocabulary, make_user

    ensure_vocabulary()
    n = 20_000

    def timed(head) -> float:
        assignment.assign(
            head, external_id="warm", brand="cardiozen", market=None, channels=["email"]
        )
        t0 = time.perf_counter()
        for i in range(n):
            assignment.assign(
                head, external_id=f"HCP-{i}", brand="cardiozen", market="UK", channels=["email"]
            )
        return (time.perf_counter() - t0) / n * 1e6

    generation = ExperimentGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    idle = timed(generation)
    admin = make_user("admin", is_staff=True)
    experiment_create(
        actor=admin,
        name="bench",
        arms=[ArmSpec("A", "model", []), ArmSpec("B", "random", [])],
        holdout=0.1,
        brand="cardiozen",
        channel="email",
    )
    generation = ExperimentGeneration.objects.get(pk=1).value
    running = timed(generation)
    print(
        f"assignment per recommendation: {running:.1f} us with a running experiment, "
        f"{idle:.1f} us with none (target < 500 us)"
    )


if __name__ == "__main__":
    main()
