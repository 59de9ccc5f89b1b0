"""An author reads an HCP's engagement in real Chromium, then its microsegment and its peers.

After a fit on the engagement world (``tests/engagement/world.py``), ``early-0``
lives in Tokyo and opens what arrives at 08:00 local, clicking only
rep-triggered email.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from content_modules.affinity.models import HCP
from content_modules.engagement import serving
from content_modules.engagement.models import Microsegment
from tests.engagement import world

from .helpers import console_errors, login, screenshot, submit, wait_for_css

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def test_author_reads_the_heatmap_and_follows_the_microsegment_to_its_hcps(
    browser, live_server, author
):
    # Given a fitted engagement model
    serving.reset_cache()
    world.build(author, n_per_group=40)
    model = world.train()
    hcp = HCP.objects.get(external_id="early-0")
    segment = Microsegment.objects.get(model=model, key=hcp.microsegment)
    members = set(
        HCP.objects.filter(microsegment=segment.key).values_list("external_id", flat=True)
    )

    # When the author opens the HCP's page
    login(browser, live_server, author)
    browser.get(f"{live_server.url}/affinity/hcps/{hcp.external_id}/")

    # Then the heatmap shows 7 weekdays x 24 local hours, coloured, the zone named
    heatmap = wait_for_css(browser, "#send-time-heatmap")
    assert "Asia/Tokyo" in heatmap.find_element(By.TAG_NAME, "caption").text
    cells = heatmap.find_elements(By.CSS_SELECTOR, "td.heat")
    assert len(cells) == 168
    assert all(c.is_displayed() and c.size["width"] >= 10 for c in cells[:24])
    colours = {c.value_of_css_property("background-color") for c in cells}
    assert len(colours) >= 3, colours  # the stylesheet colours the buckets
    best = heatmap.find_elements(By.CSS_SELECTOR, "td.heat-best")
    assert len(best) == 3
    assert " 08:00 — " in best[0].get_attribute("title")
    slots = browser.find_elements(By.CSS_SELECTOR, "ol.best-slots li")
    assert len(slots) == 3 and " 08:00 " in slots[0].text
    # and the channel chart, the clicked channel's bar the longest
    chart = browser.find_element(By.CSS_SELECTOR, "#engagement svg.bars")
    assert chart.is_displayed() and chart.size["height"] > 50
    labels = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "text.bar-label")]
    assert labels[0] == "Rep-triggered email"
    assert {"Email", "Web"} <= set(labels)
    badge = browser.find_element(By.CSS_SELECTOR, "#saturation .badge")
    assert badge.text in {"Undersaturated", "On target", "Saturated"}
    assert "touches in the last 7 days" in browser.find_element(By.CSS_SELECTOR, ".touches").text
    screenshot(browser, "engagement-hcp")

    # When they follow the microsegment link
    link = browser.find_element(By.CSS_SELECTOR, "a.microsegment-link")
    assert link.text.lower() == segment.label.lower()
    submit(browser, link)
    # Then the microsegments page shows that segment, its size and features
    assert browser.current_url.endswith(f"/affinity/microsegments/#{segment.key}")
    card = wait_for_css(browser, f"section#{segment.key}")
    assert f"{segment.size} HCPs" in card.text
    assert segment.features[0]["words"].lower() in card.text.lower()
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.segment")) == (
        Microsegment.objects.filter(model=model).count()
    )
    screenshot(browser, "engagement-microsegments")

    # When they list the segment's HCPs
    submit(browser, card.find_element(By.CSS_SELECTOR, "a.segment-hcps"))
    # Then the list holds exactly those HCPs, the filter set to the segment
    subtitle = wait_for_css(browser, "#hcp-count")
    assert subtitle.text.startswith(f"{len(members)} HCPs in microsegment {segment.key}")
    shown = {
        a.text
        for a in browser.find_elements(By.CSS_SELECTOR, "table.hcp-table tbody td:first-child a")
    }
    assert shown == members and hcp.external_id in shown
    chosen = browser.find_element(By.CSS_SELECTOR, "#id_microsegment option:checked")
    assert chosen.get_attribute("value") == segment.key
    assert console_errors(browser) == []

    # On a phone the heatmap scrolls inside its own box: neither page scrolls sideways
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    for path, selector in (
        (f"/affinity/hcps/{hcp.external_id}/", "#send-time-heatmap"),
        ("/affinity/microsegments/", f"section#{segment.key}"),
    ):
        browser.get(live_server.url + path)
        wait_for_css(browser, selector)
        width = browser.execute_script("return window.innerWidth")
        scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width == 390 and scroll_width <= width, (path, scroll_width)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(browser) == []
    serving.reset_cache()
