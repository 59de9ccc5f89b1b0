"""Issue 12 points 1 and 2 in Chromium: recalling a round, and no preselected decision.

A reviewer who types the password and presses Enter signs nothing (no
decision is preselected) and keeps what was typed; an author recalls an open
round with a reason; a refused withdrawal keeps its reason.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from content_modules.library.models import VersionStatus
from content_modules.review.models import Review, Signature
from tests.factories import PASSWORD, make_module
from tests.review.helpers import approve_all, task_for
from tests.review.helpers import submit as submit_version

from .helpers import console_errors, login, screenshot, submit, wait_for_css

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_enter_with_only_a_password_signs_nothing_and_keeps_the_password(
    browser, live_server, author, legal, vocabulary
):
    version = make_module(author, title="Enter key module")
    submit_version(version)
    login(browser, live_server, legal)
    browser.get(live_server.url + reverse("review:task", args=[task_for(version, "legal").pk]))
    radios = browser.find_elements(By.CSS_SELECTOR, "input[name=decision]")
    assert len(radios) == 3 and not [r for r in radios if r.is_selected()]

    # The reviewer types the password and presses Enter without choosing a decision.
    password = browser.find_element(By.ID, "id_password")
    password.send_keys(PASSWORD)
    browser.execute_script("window.__pageBeforeSubmit = true;")
    password.send_keys(Keys.ENTER)
    error = wait_for_css(browser, "#decision-choice-error")

    assert "Choose a decision" in error.text
    assert browser.find_element(By.ID, "id_password").get_attribute("value") == PASSWORD
    assert not Signature.objects.exists()
    screenshot(browser, "review-task-no-decision")

    # Choosing one and signing with the kept password works.
    browser.find_element(By.CSS_SELECTOR, "input[name=decision][value=approve]").click()
    submit(browser, browser.find_element(By.ID, "sign-button"))
    assert "as legal reviewer" in wait_for_css(browser, ".messages .success").text
    assert Signature.objects.filter(signer=legal, meaning="approved").count() == 1
    assert console_errors(browser, allow=("400 (Bad Request)", "favicon")) == []


def test_author_recalls_an_open_round_with_a_reason(browser, live_server, author, vocabulary):
    version = make_module(author, title="Recalled module")
    submit_version(version)
    login(browser, live_server, author)
    browser.get(live_server.url + reverse("library:module_detail", args=[version.module_id]))
    assert "0 of 3 roles decided" in wait_for_css(browser, "#round-progress").text

    browser.find_element(By.CSS_SELECTOR, "#recall summary").click()
    submit(browser, browser.find_element(By.ID, "recall-button"))
    assert "Give the reason for the recall." in wait_for_css(browser, "#recall-errors").text
    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW

    browser.find_element(By.ID, "id_recall_reason").send_keys("The market changed the label.")
    submit(browser, browser.find_element(By.ID, "recall-button"))

    assert "recalled" in wait_for_css(browser, ".messages .success").text
    assert "The market changed the label." in browser.find_element(By.ID, "round-recalled").text
    version.refresh_from_db()
    assert version.status == VersionStatus.CHANGES_REQUESTED
    review = Review.objects.get(version=version)
    assert (review.status, review.close_reason) == ("recalled", "The market changed the label.")
    # The author may edit at once.
    assert browser.find_element(By.LINK_TEXT, "Edit").is_displayed()
    screenshot(browser, "review-module-panel-recalled")
    assert console_errors(browser, allow=("400 (Bad Request)", "favicon")) == []


def test_a_refused_withdrawal_keeps_its_reason(
    browser, live_server, author, medical, legal, regulatory, vocabulary
):
    version = approve_all(make_module(author, title="Served module"), medical, legal, regulatory)
    login(browser, live_server, medical)
    browser.get(live_server.url + reverse("library:module_detail", args=[version.module_id]))
    browser.find_element(By.CSS_SELECTOR, "#withdraw summary").click()
    browser.find_element(By.ID, "id_withdraw_reason").send_keys("Label update pending.")
    browser.find_element(By.ID, "id_withdraw_password").send_keys("not-the-password")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#withdraw-form button"))

    assert "Password is missing or wrong" in wait_for_css(browser, "#withdraw-errors").text
    reason = browser.find_element(By.ID, "id_withdraw_reason")
    assert reason.get_attribute("value") == "Label update pending."
    assert browser.find_element(By.ID, "id_withdraw_password").get_attribute("value") == ""
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED

    browser.find_element(By.ID, "id_withdraw_password").send_keys(PASSWORD)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#withdraw-form button"))
    assert "withdrawn from delivery" in wait_for_css(browser, ".messages .success").text
    version.refresh_from_db()
    assert version.status == VersionStatus.WITHDRAWN
