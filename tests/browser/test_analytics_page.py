"""An author reads content performance in real Chromium: which content works, which is
unused or fatigued, by microsegment, and the CSV export of the same rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.analytics import services
from content_modules.library.models import VersionStatus
from tests import factories

from .helpers import console_errors, login, screenshot, submit, wait_for_css

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def _events(hcps, version, *, days_ago: range, deliveries_per_day: int, click_every: int):
    """Deliveries spread over ``days_ago``, every ``click_every``-th one clicked."""
    today = services.today_utc()
    out = []
    n = 0
    for ago in days_ago:
        when = datetime.combine(today - timedelta(days=ago), time(9), tzinfo=UTC)
        for k in range(deliveries_per_day):
            hcp = hcps[n % len(hcps)]
            n += 1
            for kind in ("delivered", "clicked") if n % click_every == 0 else ("delivered",):
                out.append(
                    factories.engagement_event(hcp, version, kind, when + timedelta(minutes=k))
                )
    return out


def _rows(browser) -> dict[str, list[str]]:
    table = wait_for_css(browser, "#analytics-rows")
    rows = {}
    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        first, *cells = tr.find_elements(By.TAG_NAME, "td")
        label = first.text
        for muted in first.find_elements(By.CSS_SELECTOR, ".muted"):  # the row's key
            label = label.removesuffix(muted.text).strip()
        rows[label] = [td.text for td in cells]
    return rows


def test_author_finds_what_works_what_is_unused_and_what_is_fatigued(browser, live_server, author):
    # Given three approved modules: one steady, one whose click rate fell, one never sent
    steady = factories.make_module(author, title="Steady statin story")
    fading = factories.make_module(author, title="Fading dosing card")
    shelf = factories.make_module(author, title="Shelf infographic")
    for version in (steady, fading, shelf):
        factories.force_status(version, VersionStatus.APPROVED)
    hcps = [
        HCP.objects.create(external_id=f"A{i}", microsegment="ms-1" if i % 2 else "ms-2")
        for i in range(10)
    ]
    events = _events(hcps, steady, days_ago=range(1, 60), deliveries_per_day=4, click_every=5)
    # Fading: 1 click in 4 over the 12 weeks before the last 4, then 1 in 20
    events += _events(hcps, fading, days_ago=range(29, 113), deliveries_per_day=3, click_every=4)
    events += _events(hcps, fading, days_ago=range(1, 29), deliveries_per_day=6, click_every=20)
    EngagementEvent.objects.bulk_create(events)
    since = services.today_utc() - timedelta(days=120)

    def count(version, kind, **where):
        return EngagementEvent.objects.filter(version=version, type=kind, **where).count()

    # When the author opens the analytics page for the last 120 days
    login(browser, live_server, author)
    browser.get(f"{live_server.url}/analytics/?since={since.isoformat()}")

    # Then each delivered module has its deliveries, clicks and an interval with bars
    rows = _rows(browser)
    assert set(rows) == {"Steady statin story", "Fading dosing card"}
    assert rows["Steady statin story"][0] == str(count(steady, "delivered"))
    assert rows["Steady statin story"][3] == str(count(steady, "clicked"))
    assert rows["Fading dosing card"][0] == str(count(fading, "delivered"))
    meters = browser.find_elements(By.CSS_SELECTOR, "#analytics-rows meter.ci-rate")
    assert len(meters) == 2 and all(m.is_displayed() for m in meters)
    assert "–" in rows["Fading dosing card"][5]  # "a% – b%"
    # and the module that was never delivered is listed as unused, the fading one as fatigued
    unused = wait_for_css(browser, "#unused-list")
    assert [a.text for a in unused.find_elements(By.TAG_NAME, "a")] == ["Shelf infographic"]
    assert "never delivered" in unused.text
    fatigued = browser.find_element(By.CSS_SELECTOR, "#fatigued-list")
    assert [a.text for a in fatigued.find_elements(By.TAG_NAME, "a")] == ["Fading dosing card"]
    assert "→" in fatigued.text
    screenshot(browser, "analytics-by-module")

    # When they group by microsegment
    Select(browser.find_element(By.ID, "id_by")).select_by_visible_text("Microsegment")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]"))
    # Then one row per microsegment, with that segment's deliveries
    rows = _rows(browser)
    assert set(rows) == {"ms-1", "ms-2"}
    delivered_ms2 = EngagementEvent.objects.filter(
        type="delivered", hcp__microsegment="ms-2"
    ).count()
    assert rows["ms-2"][0] == str(delivered_ms2)

    # When they look at modules within one microsegment
    Select(browser.find_element(By.ID, "id_by")).select_by_visible_text("Module")
    Select(browser.find_element(By.ID, "id_microsegment")).select_by_value("ms-2")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]"))
    # Then the counts are those of that segment's HCPs only
    rows = _rows(browser)
    assert rows["Steady statin story"][0] == str(
        count(steady, "delivered", hcp__microsegment="ms-2")
    )
    assert "microsegment=ms-2" in browser.current_url

    # And the CSV export holds the same rows as the page
    href = browser.find_element(By.ID, "csv-export").get_attribute("href")
    assert "microsegment=ms-2" in href
    text = browser.execute_script(
        "const r = new XMLHttpRequest(); r.open('GET', arguments[0], false); r.send();"
        "return [r.status, r.getResponseHeader('Content-Type'), r.responseText];",
        href,
    )
    assert text[0] == 200 and text[1].startswith("text/csv")
    exported = {r["label"]: r for r in csv.DictReader(io.StringIO(text[2]))}
    assert set(exported) == set(rows)
    assert exported["Steady statin story"]["deliveries"] == rows["Steady statin story"][0]

    # When they follow the unused module's link, they reach its library page
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#unused-list a"))
    assert browser.current_url.endswith(f"/library/modules/{shelf.module_id}/")
    assert "Shelf infographic" in wait_for_css(browser, "h1").text
    assert console_errors(browser) == []

    # On a phone the table scrolls inside its own box: the page does not scroll sideways
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(f"{live_server.url}/analytics/?since={since.isoformat()}")
    wait_for_css(browser, "#analytics-rows")
    width = browser.execute_script("return window.innerWidth")
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width == 390 and scroll_width <= width, scroll_width
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(browser) == []
