"""Helpers for experiment tests: start one, find HCPs in an arm."""

from __future__ import annotations

from content_modules.experiments import assignment
from content_modules.experiments.models import Experiment


def start(client, **body) -> dict:
    body.setdefault("name", "test")
    body.setdefault("arms", [{"name": "A", "policy": "model"}, {"name": "B", "policy": "random"}])
    response = client.post("/api/v1/experiments", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def hcps_in(experiment_id: int, arm: str, n: int = 1, prefix: str = "HCP-") -> list[str]:
    """The first n external ids that the hash puts in the arm (or the holdout)."""
    running = next(r for r in assignment._load() if r.id == experiment_id)
    found, i = [], 0
    while len(found) < n:
        external_id = f"{prefix}{i}"
        if assignment.arm_for(running, external_id).name == arm:
            found.append(external_id)
        i += 1
    return found


def experiment(experiment_id: int) -> Experiment:
    return Experiment.objects.get(pk=experiment_id)
