"""The engagement model in people's pages: an HCP's channel affinity, send-time heatmap,
saturation and microsegment; the microsegments page and the HCP list filtered by one.

The world (``tests/engagement/world.py``) makes a few things certain: ``early-*``
HCPs live in Tokyo, open what arrives at 08:00 local and click only rep-triggered
email; ``late-*`` HCPs live in London, open at 19:00 local and click only on the
web. Everything else the tests check against the database or the page itself.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.engagement import learning, serving
from content_modules.engagement.models import EngagementModel, Microsegment
from tests.engagement import world
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

STATE_WORDS = {"Undersaturated", "On target", "Saturated"}
WORLD_CHANNELS = ("Email", "Rep-triggered email", "Web")


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def assert_csp_safe(page: str) -> None:
    """No inline styles or scripts: the CSP would block them."""
    assert ' style="' not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)


def text(fragment: str) -> str:
    """What a person reads in an HTML fragment: tags gone, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def between(page: str, start: str, end: str) -> str:
    i = page.index(start)
    return page[i : page.index(end, i)]


def engagement_section(page: str) -> str:
    return between(page, 'id="engagement"', "</section>")


def heat_cells(page: str) -> list[tuple[str, str]]:
    """(class, title) of every heatmap cell, in reading order."""
    table = between(page, 'id="send-time-heatmap"', "</table>")
    return re.findall(r'<td class="(heat[^"]*)" title="([^"]*)"', table)


def best_slots(page: str) -> list[str]:
    listing = between(page, '<ol class="best-slots">', "</ol>")
    return [text(li) for li in re.findall(r"<li>(.*?)</li>", listing, re.S)]


def bar_labels(section: str) -> list[str]:
    """The channel bars' labels, longest bar first (the chart sorts by probability)."""
    return re.findall(r'<text class="bar-label"[^>]*>([^<]+)</text>', section)


def listed_ids(client, url: str) -> list[str]:
    """Every HCP the list shows at ``url``, following its pages."""
    ids: list[str] = []
    while url:
        page = client.get(url).content.decode()
        ids += re.findall(r'<td><a href="/affinity/hcps/([^/"]+)/">', page)
        nxt = re.search(r'<a href="(\?[^"]*)">Next</a>', page)
        url = "/affinity/hcps/" + html.unescape(nxt.group(1)) if nxt else ""
    return ids


def deliveries(hcp: HCP, days: int) -> int:
    since = timezone.now() - timedelta(days=days)
    return EngagementEvent.objects.filter(hcp=hcp, type="delivered", occurred_at__gte=since).count()


def deliver(hcp: HCP, version, *, hours_ago: float, channel: str = "email") -> None:
    EngagementEvent.objects.create(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module_id=version.module_id,
        version=version,
        type="delivered",
        occurred_at=timezone.now() - timedelta(hours=hours_ago),
        channel=channel,
    )


@pytest.fixture
def fitted(author, settings):
    """The world stored and one engagement model fitted on it."""
    settings.ENGAGEMENT_MAX_PER_WEEK = 5
    serving.reset_cache()
    modules, early, late = world.build(author, n_per_group=40)
    model = world.train()
    yield {"modules": modules, "early": early, "late": late, "model": model}
    serving.reset_cache()


def test_hcp_page_shows_channels_send_times_saturation_and_microsegment(client, fitted, author):
    early, late = fitted["early"][0], fitted["late"][0]
    login(client, author)

    for hcp, zone, hour, top_channel in (
        (early, "Asia/Tokyo", "08:00", "Rep-triggered email"),
        (late, "Europe/London", "19:00", "Web"),
    ):
        hcp.refresh_from_db()
        response = client.get(f"/affinity/hcps/{hcp.external_id}/")
        assert response.status_code == 200
        page = response.content.decode()
        section = engagement_section(page)
        assert "No engagement model has been trained yet" not in section
        assert f"Engagement model {fitted['model'].model_version}" in text(section)

        # The heatmap: 7 weekday rows, Monday first, 24 local hours, named zone
        cells = heat_cells(page)
        assert len(cells) == 168
        assert re.findall(r'<th scope="row"><abbr title="(\w+)">', page) == list(
            learning.WEEKDAY_NAMES
        )
        assert cells[0][1].startswith("Mon 00:00 — ") and cells[0][1].endswith("% open")
        assert cells[167][1].startswith("Sun 23:00 — ")
        assert zone in text(between(page, "<caption>", "</caption>"))
        # The best slot is at the world's local hour, and it is in the top colour
        slots = best_slots(page)
        assert len(slots) == 3
        assert re.fullmatch(rf"\w+day {hour} \(\d+(\.\d)?% open\)", slots[0]), slots
        marked = [title for css, title in cells if "heat-best" in css.split()]
        assert len(marked) == 3
        day, at = slots[0].split()[:2]
        assert any(t.startswith(f"{day[:3]} {at} — ") for t in marked)
        assert all("heat-4" in css.split() for css, _ in cells if "heat-best" in css.split())
        assert f"Local time, {zone}." in text(section)

        # Channel affinity: one bar per channel, labels not slugs; the clicked channel longest
        labels = bar_labels(section)
        assert set(WORLD_CHANNELS) <= set(labels)
        assert labels[0] == top_channel
        assert "rep_email" not in page

        # Saturation: no touches in the last 7 days (the world's are 8 to 56 days old)
        touches = text(between(section, '<p class="touches">', "</p>"))
        assert (
            touches == f"0 touches in the last 7 days · {deliveries(hcp, 28)} in the last 28 days"
        )
        badge = re.search(
            r'<span class="badge saturation saturation-(\w+)">([^<]+)</span>', section
        )
        assert badge and badge.group(2) in STATE_WORDS
        recommended = float(re.search(r'id="recommended-per-week">([\d.]+)<', section).group(1))
        assert badge.group(1) == learning.saturation_state(0, recommended)

        # The microsegment, linked to its place on the microsegments page
        segment = Microsegment.objects.get(model=fitted["model"], key=hcp.microsegment)
        link = re.search(
            r'<a href="/affinity/microsegments/#([\w-]+)" class="microsegment-link">([^<]+)</a>',
            section,
        )
        assert link and link.group(1) == segment.key
        assert html.unescape(link.group(2)).lower() == segment.label.lower()
        assert "From your group's pattern" not in page
        assert 'href="/affinity/microsegments/"' in page  # the page's navigation
        assert_csp_safe(page)


def test_recent_touches_make_the_hcp_saturated(client, fitted, author):
    # Given eight deliveries in the last week, above the most the model may recommend (5)
    hcp = fitted["early"][1]
    for i in range(8):
        deliver(hcp, fitted["modules"][0], hours_ago=6 + 12 * i)
    login(client, author)
    section = engagement_section(client.get(f"/affinity/hcps/{hcp.external_id}/").content.decode())
    badge = re.search(r'<span class="badge saturation saturation-(\w+)">([^<]+)</span>', section)
    assert badge.groups() == ("saturated", "Saturated")
    touches = text(between(section, '<p class="touches">', "</p>"))
    assert touches == f"8 touches in the last 7 days · {deliveries(hcp, 28)} in the last 28 days"
    assert deliveries(hcp, 28) > 8


def test_an_hcp_without_history_gets_the_groups_pattern(client, fitted, author):
    HCP.objects.create(
        external_id="early-new", specialty="cardiology", segment="digital", timezone="Asia/Tokyo"
    )
    login(client, author)
    page = client.get("/affinity/hcps/early-new/").content.decode()
    section = engagement_section(page)
    assert "From your group's pattern (no history yet)" in text(section)
    assert len(heat_cells(page)) == 168
    assert best_slots(page)[0].split()[1] == "08:00"  # the group opens at 08:00 in Tokyo
    assert "None yet: microsegments come with each fit" in text(section)
    assert "0 touches in the last 7 days · 0 in the last 28 days" in text(section)


def test_microsegments_page_lists_every_segment_with_a_working_filter_link(client, fitted, medical):
    model = fitted["model"]
    segments = list(Microsegment.objects.filter(model=model))
    assert len(segments) >= 2
    total = sum(s.size for s in segments)
    assert total == HCP.objects.count() == 80
    login(client, medical)

    response = client.get("/affinity/microsegments/")
    assert response.status_code == 200
    page = response.content.decode()
    assert_csp_safe(page)
    assert f"Engagement model {model.model_version}" in text(page)
    assert f"{len(segments)} microsegments · {total} HCPs" in text(page)
    assert page.count('<section class="card segment"') == len(segments)
    everyone: list[str] = []
    for s in segments:
        card = text(between(page, f'<section class="card segment" id="{s.key}"', "</section>"))
        assert card.startswith(f"{s.key} {s.label[:1].upper()}{s.label[1:]}")
        share = s.size / total * 100
        share_text = f"{share:.0f}%" if share >= 10 else f"{share:.1f}%"
        assert f"{s.size} HCPs ({share_text} of {total})" in card
        assert s.features, s
        for f in s.features:
            words = f["words"][:1].upper() + f["words"][1:]
            assert f"{words} {float(f['z']):+.2f}" in card

        # The link lists exactly the segment's HCPs
        url = f"/affinity/hcps/?microsegment={s.key}"
        assert f'<a class="segment-hcps" href="{url}">' in page
        members = set(HCP.objects.filter(microsegment=s.key).values_list("external_id", flat=True))
        shown = listed_ids(client, url)
        assert len(shown) == len(set(shown)) == s.size
        assert set(shown) == members
        listing = client.get(url).content.decode()
        assert f"{s.size} HCPs in microsegment {s.key}" in text(listing)
        assert f'<option value="{s.key}" selected>' in listing
        everyone += shown
    assert sorted(everyone) == sorted(HCP.objects.values_list("external_id", flat=True))

    # The unfiltered list offers every segment in its filter and links the page
    listing = client.get("/affinity/hcps/").content.decode()
    for s in segments:
        assert f'<option value="{s.key}">' in listing
    assert 'href="/affinity/microsegments/"' in listing
    assert_csp_safe(listing)
    # A key no segment has filters to nothing, and says so
    empty = client.get("/affinity/hcps/", {"microsegment": "ms-999"}).content.decode()
    assert "0 HCPs in microsegment ms-999" in text(empty)


def test_before_any_fit_the_pages_say_so(client, author):
    serving.reset_cache()
    world.build(author, n_per_group=1, deliveries=10)
    HCP.objects.create(external_id="HCP-BLANK", timezone="Asia/Tokyo")
    assert not EngagementModel.objects.exists()
    login(client, author)

    # An HCP with history: the note, and the page still drawn from the defaults
    page = client.get("/affinity/hcps/early-0/").content.decode()
    section = engagement_section(page)
    assert "No engagement model has been trained yet" in text(section)
    assert "Engagement model " not in text(section)
    assert len(heat_cells(page)) == 168
    assert set(WORLD_CHANNELS) <= set(bar_labels(section))
    assert_csp_safe(page)
    # An HCP without any: every slot alike, so no slot is called the best
    page = client.get("/affinity/hcps/HCP-BLANK/").content.decode()
    section = engagement_section(page)
    assert "No engagement model has been trained yet" in text(section)
    cells = heat_cells(page)
    assert len(cells) == 168
    assert {css for css, _ in cells} == {"heat heat-2"}
    assert "every slot alike" in text(between(page, "<caption>", "</caption>"))
    assert "Every slot alike: no best time yet." in text(section)
    assert "Asia/Tokyo" in text(between(page, "<caption>", "</caption>"))

    segments = client.get("/affinity/microsegments/").content.decode()
    assert "No engagement model has been trained yet" in text(segments)
    assert '<section class="card segment"' not in segments
    listing = client.get("/affinity/hcps/").content.decode()
    assert 'id="id_microsegment"' not in listing
    serving.reset_cache()


def test_the_pages_need_a_content_role(client, db, engine):
    HCP.objects.create(external_id="HCP-ACL-1")
    for url in ("/affinity/microsegments/", "/affinity/hcps/HCP-ACL-1/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login" in response["Location"]
    for user in (make_user(None), engine):
        client.logout()
        login(client, user)
        for url in (
            "/affinity/microsegments/",
            "/affinity/hcps/HCP-ACL-1/",
            "/affinity/hcps/?microsegment=ms-1",
        ):
            response = client.get(url)
            assert response.status_code == 403, (user, url)
            assert "HCP insight is for authors, reviewers and administrators" in (
                response.content.decode()
            )
