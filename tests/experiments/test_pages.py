"""The experiments pages: start one from the form, read its arms, chart and verdict,
stop and archive it; only admins."""

from __future__ import annotations

import pytest

from content_modules.affinity.models import HCP
from content_modules.experiments.models import Experiment
from content_modules.library.models import ModuleVersion
from tests.delivery.helpers import approved, event, recommend
from tests.factories import api_client, make_user

from .helpers import hcps_in

pytestmark = pytest.mark.django_db


def form(**overrides) -> dict:
    body = {
        "name": "Model vs random",
        "arm-0-name": "A",
        "arm-0-policy": "model",
        "arm-1-name": "B",
        "arm-1-policy": "random",
        "holdout": "0.1",
        "metric": "click",
        "min_detectable_lift": "0.02",
        "brand": "",
        "market": "",
        "channel": "",
    }
    body.update(overrides)
    return body


def test_an_admin_starts_an_experiment_and_reads_its_results(client, admin_user, author, engine):
    for _ in range(3):
        approved(author)
    client.force_login(admin_user)
    response = client.post("/experiments/", form())
    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/experiments/{experiment.pk}/"
    assert [a["policy"] for a in experiment.arms] == ["model", "random"]
    assert experiment.holdout == 0.1

    # Deliveries and clicks in both arms
    engine_client = api_client(engine)
    for arm, clicks in (("A", 1), ("B", 0)):
        for n, external_id in enumerate(hcps_in(experiment.pk, arm, 2)):
            hcp = HCP.objects.create(external_id=external_id)
            body = recommend(engine_client, hcp=external_id, k=1).json()
            assert body["experiment"] == {"id": experiment.pk, "arm": arm}
            version = ModuleVersion.objects.get(pk=body["items"][0]["version_id"])
            event(hcp, version, "delivered", rec=body["recommendation_id"])
            if n < clicks:
                event(hcp, version, "clicked", rec=body["recommendation_id"])

    page = client.get(f"/experiments/{experiment.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Model vs random" in html
    assert 'id="rate-chart"' in html and html.count("<polyline") == 2
    assert 'id="verdict"' in html and "not yet significant" in html
    assert "each arm needs" in html  # the power calculation for the lift asked
    assert ">0.5000 <" in html  # arm A's rate: 1 of 2
    assert "style=" not in html

    # Stop, then archive: it leaves the default list
    client.post(f"/experiments/{experiment.pk}/", {"action": "stop"})
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    stopped = client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="archive-experiment"' in stopped
    client.post(f"/experiments/{experiment.pk}/", {"action": "archive"})
    experiment.refresh_from_db()
    assert experiment.status == "archived"
    assert "Model vs random" not in client.get("/experiments/").content.decode()
    assert "Model vs random" in client.get("/experiments/?status=archived").content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"arm-1-name": "", "arm-1-policy": ""}, "arms"),
        ({"arm-1-policy": "telepathy"}, "arms.1.policy"),
        ({"holdout": "0.7"}, "holdout"),
    ],
)
def test_a_bad_form_is_refused_naming_the_field(client, admin_user, overrides, field):
    client.force_login(admin_user)
    response = client.post("/experiments/", form(**overrides))
    assert response.status_code == 400
    assert f"<strong>{field}</strong>" in response.content.decode()
    assert not Experiment.objects.exists()


def test_overlapping_traffic_is_refused_from_the_form(client, admin_user):
    client.force_login(admin_user)
    assert client.post("/experiments/", form()).status_code == 302
    response = client.post("/experiments/", form(name="Second"))
    assert response.status_code == 400
    assert "<strong>traffic</strong>" in response.content.decode()


def test_only_admins_see_the_pages(client, author):
    client.force_login(author)
    assert client.get("/experiments/").status_code == 403
    client.force_login(make_user("engine"))
    assert client.get("/experiments/").status_code == 403
    client.logout()
    assert client.get("/experiments/").status_code == 302
