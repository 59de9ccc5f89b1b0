"""An admin runs an A/B test from the browser and reads a correct verdict (real Chromium)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.delivery.models import Recommendation, RecommendationItem
from content_modules.experiments.models import Experiment
from tests.delivery.helpers import approved

from .helpers import console_errors, login, screenshot, submit, wait_for_css

pytestmark = pytest.mark.browser


def simulate(experiment: Experiment, version, rates: dict[str, float], n: int, seed: int = 0):
    """n delivered answers per arm, clicked at the arm's true rate (what the engine reports)."""
    rng = np.random.default_rng(seed)
    for arm, rate in rates.items():
        hcps = HCP.objects.bulk_create(
            [HCP(external_id=f"{arm}-{i}") for i in range(n)], batch_size=500
        )
        recs = [
            Recommendation(
                hcp=h,
                hcp_external_id=h.external_id,
                policy="greedy",
                experiment=experiment,
                arm=arm,
            )
            for h in hcps
        ]
        Recommendation.objects.bulk_create(recs, batch_size=500)
        RecommendationItem.objects.bulk_create(
            [
                RecommendationItem(
                    recommendation=r,
                    rank=1,
                    module_id=version.module_id,
                    version=version,
                    score=0.1,
                    propensity=1.0,
                )
                for r in recs
            ],
            batch_size=500,
        )
        events = []
        for h, r in zip(hcps, recs, strict=True):
            kinds = ["delivered"] + (["clicked"] if rng.random() < rate else [])
            events += [
                EngagementEvent(
                    event_id=uuid.uuid4(),
                    hcp=h,
                    module_id=version.module_id,
                    version=version,
                    type=kind,
                    occurred_at=experiment.started_at,
                    channel="email",
                    recommendation_id=r.pk,
                )
                for kind in kinds
            ]
        EngagementEvent.objects.bulk_create(events, batch_size=1000)


def test_admin_starts_an_ab_test_and_reads_its_verdict(browser, live_server, admin_user, author):
    version = approved(author)
    login(browser, live_server, admin_user)
    browser.get(f"{live_server.url}/experiments/")
    wait_for_css(browser, "#new-experiment")
    browser.find_element(By.ID, "id_name").send_keys("Model vs random, email")
    browser.find_element(By.ID, "id_arm-0-name").send_keys("A")
    Select(browser.find_element(By.ID, "id_arm-0-policy")).select_by_value("random")
    browser.find_element(By.ID, "id_arm-1-name").send_keys("B")
    Select(browser.find_element(By.ID, "id_arm-1-policy")).select_by_value("model")
    holdout = browser.find_element(By.ID, "id_holdout")
    holdout.clear()
    holdout.send_keys("0.1")
    browser.find_element(By.ID, "id_mde").send_keys("0.02")
    Select(browser.find_element(By.ID, "id_channel")).select_by_value("email")
    submit(browser, browser.find_element(By.ID, "start-experiment"))

    verdict = wait_for_css(browser, "#verdict")
    assert "not yet" in verdict.text.lower() or "no deliveries" in verdict.text.lower()
    experiment = Experiment.objects.get()

    # The engine reports 600 deliveries per arm: B clicks at 20%, A at 8%
    simulate(experiment, version, {"A": 0.08, "B": 0.20}, n=600)
    browser.refresh()
    verdict = wait_for_css(browser, "#verdict")
    assert "B ahead" in verdict.text, verdict.text
    chart = browser.find_element(By.ID, "rate-chart")
    assert chart.is_displayed()
    assert len(chart.find_elements(By.CSS_SELECTOR, "polyline")) == 2
    rows = browser.find_elements(By.CSS_SELECTOR, "#arm-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "th").text for r in rows[:2]] == ["A", "B"]
    assert "600" in rows[0].text and "600" in rows[1].text
    assert "each arm needs" in browser.find_element(By.ID, "power").text
    screenshot(browser, "experiment-detail")
    assert not console_errors(browser)

    # Stop it from the page
    submit(browser, browser.find_element(By.ID, "stop-experiment"))
    wait_for_css(browser, "#archive-experiment")
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
