"""An admin on the affinity model page in real Chromium: train now, activate a rejected model."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from content_modules.affinity.models import AffinityModel, ModelStatus, TrainingRequest
from content_modules.audit.models import AuditEntry

from .helpers import console_errors, login, screenshot, submit, wait_for_css

pytestmark = pytest.mark.browser

REASON = "does not beat popularity within specialty x segment: ndcg@5 0.61 vs 0.63"


def test_admin_trains_now_and_activates_a_rejected_model_with_a_reason(
    browser, live_server, admin_user
):
    # Given a model the gate rejected, and no engagement to train a new one on
    rejected = AffinityModel.objects.create(
        model_version="2026-11-30T08:00:00Z#1",
        trained_at="2026-11-30T08:00:00Z",
        artifact=b"",
        status=ModelStatus.REJECTED,
        reason=REASON,
    )
    login(browser, live_server, admin_user)
    browser.get(live_server.url + "/affinity/model/")
    # Then the page says no model is in use and why, with the verdict in the table
    notice = wait_for_css(browser, "#no-active-model")
    assert f"the gate rejected {rejected.model_version}" in notice.text
    verdict = browser.find_element(By.CSS_SELECTOR, '.gate-verdict[data-status="rejected"]')
    assert "Rejected by the gate" in verdict.text and REASON in verdict.text

    # When the admin presses "Train now"
    submit(browser, browser.find_element(By.ID, "train-now-button"))
    # Then the request ran through the outbox and the page says what came of it
    message = wait_for_css(browser, ".messages")
    assert "Training finished: not possible" in message.text
    assert TrainingRequest.objects.get().requested_by_id == admin_user.pk

    # When they activate the rejected model with a reason
    verdict = browser.find_element(By.CSS_SELECTOR, '.gate-verdict[data-status="rejected"]')
    field = browser.find_element(By.ID, f"reason-{rejected.pk}")
    field.send_keys("Launch week: any personalised ranking, figures reviewed.")
    submit(browser, verdict.find_element(By.CSS_SELECTOR, "button.danger"))
    # Then it is in use, marked as activated by them with the reason, and audited
    heading = wait_for_css(browser, ".section-title")
    assert heading.text == f"In use: {rejected.model_version}"
    verdict = browser.find_element(By.CSS_SELECTOR, '.gate-verdict[data-status="forced"]')
    assert "Launch week: any personalised ranking, figures reviewed." in verdict.text
    assert AuditEntry.objects.filter(
        action="affinity.model_force_activated", actor_id=admin_user.pk
    ).exists()
    screenshot(browser, "affinity-model-forced")
    assert console_errors(browser) == []
