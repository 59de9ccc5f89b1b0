"""seed_demo gives a newcomer a working demo, and running it twice changes nothing."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from rest_framework.test import APIClient

from content_modules.affinity.models import HCP
from content_modules.audit.services import audit_verify
from content_modules.library.models import Module, ModuleVersion, Tag, TagKind, VersionStatus


def _seed() -> str:
    out = StringIO()
    # The affinity model is trained in its own test below (it needs the full demo's HCPs).
    call_command("seed_demo", "--hcps", "120", "--no-train", stdout=out)
    return out.getvalue()


# One seeded demo serves the three checks below (each seed takes ~17 s in CI).
@pytest.mark.django_db
def test_seed_demo_gives_a_working_demo_and_running_it_again_changes_nothing(client):
    output = _seed()

    _check_modules_and_logins(output)
    _check_review_history(client)

    # Running it again creates nothing new
    counts = (Module.objects.count(), ModuleVersion.objects.count(), HCP.objects.count())
    output = _seed()

    assert (Module.objects.count(), ModuleVersion.objects.count(), HCP.objects.count()) == counts
    assert "(0 new this run)" in output
    # Only hashes are stored, so each run prints a fresh engine token, and it works
    assert _printed_token_works(output)


def _check_modules_and_logins(output: str) -> None:
    """Modules in every state and every tag, variants, HCPs, and logins that work."""

    assert Module.objects.count() >= 40
    states = set(ModuleVersion.objects.values_list("status", flat=True))
    assert states == set(VersionStatus.values)
    # Every vocabulary value is used by at least one module version.
    for kind in TagKind.values:
        for tag in Tag.objects.filter(kind=kind):
            field = "themes" if kind == TagKind.THEME else kind
            assert ModuleVersion.objects.filter(**{field: tag}).exists(), tag
    # Variants: several modules share one key message family.
    assert Module.objects.filter(variant_of__isnull=False).count() >= 20
    assert HCP.objects.count() == 120
    for role, username, password in [
        ("author", "author", "author-demo-2026"),
        ("medical_reviewer", "medical", "medical-demo-2026"),
        ("legal_reviewer", "legal", "legal-demo-2026"),
        ("regulatory_reviewer", "regulatory", "regulatory-demo-2026"),
        ("engine", "engine", "engine-demo-2026"),
        ("admin", "admin", "admin-demo-2026"),
    ]:
        assert f"{username}" in output and password in output
        user = authenticate(username=username, password=password)
        assert user is not None and user.groups.filter(name=role).exists()
    assert "engine API token:" in output
    assert _printed_token_works(output)
    assert audit_verify().ok


def _printed_token_works(output: str) -> bool:
    key = output.split("engine API token:")[1].split()[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/content").status_code == 200


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_seed_demo_trains_through_the_gate_a_model_that_beats_its_baselines(
    db, embedding_model, client
):
    from content_modules.affinity.models import AffinityModel, ModelStatus

    # When the demo is seeded as a newcomer would (default size), then seeded again
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=StringIO())

    # Then one model was trained, and the gate put it in use
    model = AffinityModel.objects.get()
    assert model.is_active and model.status == ModelStatus.PASSED
    assert f"affinity model {model.model_version} (active): passed" in out.getvalue()
    # Because it beats popularity within specialty x segment by the margins
    versus = model.metrics["gate"]["popularity"]
    for metric in ("ndcg@5", "log_loss"):
        assert versus[metric]["diff"] > versus[metric]["margin"] > 0, metric
    # And its offline evaluation ranks better than every baseline, and better than chance
    methods = model.metrics["evaluation"]["methods"]
    for baseline in ("random", "popularity", "group_popularity"):
        assert methods["model"]["ndcg@5"] > methods[baseline]["ndcg@5"], baseline
    assert methods["model"]["auc"] > 0.6
    # And the model page shows it in use with the verdict
    assert client.login(username="admin", password="admin-demo-2026")
    page = client.get("/affinity/model/").content.decode()
    assert f"In use: {model.model_version}" in page
    assert 'data-status="passed"' in page


def _check_review_history(client) -> None:
    """Twelve weeks of review history, legal the slowest, as the dashboard shows it."""
    from content_modules.review.dashboard import dashboard_metrics
    from content_modules.review.models import Review, ReviewTask

    metrics = dashboard_metrics()
    by_role = {r["role"]: r for r in metrics["cycle_by_role"]}
    # Every role has decisions with a real (non-zero) cycle time, legal the slowest
    for role in ("medical", "legal", "regulatory"):
        assert by_role[role]["decisions"] > 0 and by_role[role]["median_hours"] > 10, role
    assert by_role["legal"]["slowest"]
    assert by_role["legal"]["median_hours"] > by_role["regulatory"]["median_hours"]
    assert by_role["regulatory"]["median_hours"] > by_role["medical"]["median_hours"]
    # Approvals fall in many ISO weeks, each with a non-zero median cycle time
    assert len(metrics["cycle_time"]) >= 8
    assert all(row["median_hours"] > 0 for row in metrics["cycle_time"])
    # Superseded modules took two rounds: rounds per approval is above 1
    assert metrics["rounds"]["approvals"] > 0 and metrics["rounds"]["mean"] > 1
    # Open rounds were submitted over the last days, so open tasks have ages
    ages = metrics["open_tasks"]["by_role"]["legal"]
    assert sum(1 for count in ages.values() if count) >= 2
    # Nothing lies in the future, and the trail still verifies
    now = metrics["generated_at"]
    assert not Review.objects.filter(submitted_at__gt=now).exists()
    assert not ReviewTask.objects.filter(decided_at__gt=now).exists()
    assert audit_verify().ok
    # And the page a newcomer opens shows the per-role figures
    assert client.login(username="legal", password="legal-demo-2026")
    page = client.get("/review/dashboard/").content.decode()
    assert "0.0 h" not in page
    assert 'data-role="legal" class="slowest"' in page
