"""Author pages, through Django's test client: access, forms, errors, rows written."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from content_modules.audit.models import AuditEntry
from content_modules.errors import InvalidInput
from content_modules.library.forms import ModuleForm
from content_modules.library.models import (
    Channel,
    ImageAsset,
    Module,
    ModuleVersion,
    Tag,
    TagKind,
    VersionStatus,
)
from content_modules.library.services import reference_create
from tests.factories import PASSWORD, force_status, make_module, make_user, pdf_bytes, tag

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _vocabulary(vocabulary):
    """Every test here works with the small test vocabulary, brands and markets."""


# ---------------------------------------------------------------- helpers


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def png_upload(name: str = "pic.png", size: tuple[int, int] = (64, 48)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def form_data(**overrides) -> dict:
    """A valid create-form POST; override or drop (value None) any field."""
    data = {
        "title": "Fewer events, page form",
        "brand": _brand_pk("cardiozen"),
        "market": _market_pk("UK"),
        "headline": "CardioZen cut major cardiac events",
        "body": "In the pivotal trial patients on CardioZen had fewer major events.",
        "key_message": "CardioZen reduced major cardiac events by 24% versus placebo.",
        "call_to_action": "Read the study",
        "message": tag(TagKind.MESSAGE, "efficacy").pk,
        "themes": [tag(TagKind.THEME, "outcomes").pk],
        "tonality": tag(TagKind.TONALITY, "clinical").pk,
        "format": tag(TagKind.FORMAT, "text").pk,
        "channels": [Channel.objects.get(slug="email").pk, Channel.objects.get(slug="web").pk],
        "expires_on": (timezone.localdate() + timedelta(days=200)).isoformat(),
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _brand_pk(slug: str) -> int:
    from content_modules.library.models import Brand

    return Brand.objects.get(slug=slug).pk


def _market_pk(code: str) -> int:
    from content_modules.library.models import Market

    return Market.objects.get(code=code).pk


def field_block(html: str, name: str) -> str:
    """The HTML of one field's container on the form page (label, help, errors, input)."""
    match = re.search(
        rf'<div class="field[^"]*" id="field-{name}">(.*?)(?=<div class="field[^"]*" id="field-|'
        r"</section>)",
        html,
        re.S,
    )
    assert match, f"field {name} not on the page"
    return match.group(1)


def assert_field_error(response, name: str, text: str) -> None:
    """The error is inside the field's block, linked to its input by aria-describedby."""
    html = response.content.decode()
    block = field_block(html, name)
    assert 'class="errorlist"' in block and f'id="id_{name}_error"' in block, block
    assert text in block, f"{text!r} not next to {name}: {block}"
    assert f"id_{name}_error" in re.sub(r'id="id_\w+_error"', "", block), (
        "the input (or its fieldset) is not described by the error"
    )


def media_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ---------------------------------------------------------------- access


def _pages(module_pk: int) -> list[str]:
    return [
        reverse("library:module_list"),
        reverse("library:module_detail", args=[module_pk]),
        reverse("library:version_detail", args=[module_pk, 1]),
        reverse("library:module_create"),
        reverse("library:module_edit", args=[module_pk]),
    ]


def test_anonymous_visitor_is_sent_to_login_from_every_page(client, author):
    module_pk = make_module(author).module_id
    for url in _pages(module_pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("accounts:login")), url


def test_engine_service_account_gets_403_page_everywhere(client, author, engine):
    module_pk = make_module(author).module_id
    login(client, engine)
    for url in _pages(module_pk):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You do not have access to this page" in response.content.decode()


def test_user_without_any_role_gets_403(client, author):
    module_pk = make_module(author).module_id
    login(client, make_user(None))
    assert client.get(reverse("library:module_detail", args=[module_pk])).status_code == 403


@pytest.mark.parametrize("role_fixture", ["medical", "legal", "regulatory", "admin_user"])
def test_reviewers_and_admin_can_view_library_pages(client, author, role_fixture, request):
    module_pk = make_module(author, title="Visible to reviewers").module_id
    login(client, request.getfixturevalue(role_fixture))
    for url in _pages(module_pk)[:3]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Visible to reviewers" in response.content.decode()


@pytest.mark.parametrize("role_fixture", ["medical", "legal", "regulatory"])
def test_reviewers_cannot_create_or_edit(client, author, role_fixture, request):
    module_pk = make_module(author).module_id
    login(client, request.getfixturevalue(role_fixture))
    assert client.get(reverse("library:module_create")).status_code == 403
    assert client.get(reverse("library:module_edit", args=[module_pk])).status_code == 403
    response = client.post(reverse("library:module_create"), form_data())
    assert response.status_code == 403
    assert not Module.objects.filter(latest__title="Fewer events, page form").exists()


def test_reviewer_sees_no_edit_or_create_buttons(client, author, medical):
    module_pk = make_module(author).module_id
    login(client, medical)
    html = client.get(reverse("library:module_detail", args=[module_pk])).content.decode()
    assert reverse("library:module_edit", args=[module_pk]) not in html
    assert reverse("library:module_create") not in html


def test_admin_can_edit_anyones_module(client, author, admin_user):
    module_pk = make_module(author).module_id
    login(client, admin_user)
    assert client.get(reverse("library:module_edit", args=[module_pk])).status_code == 200


def test_other_authors_module_edit_is_a_403_page_and_changes_nothing(client, author, other_author):
    version = make_module(author, title="Ada's module")
    login(client, other_author)
    url = reverse("library:module_edit", args=[version.module_id])
    assert client.get(url).status_code == 403
    response = client.post(url, form_data(title="Hijacked"))
    assert response.status_code == 403
    assert "authors and administrators edit it" in response.content.decode()
    version.refresh_from_db()
    assert version.title == "Ada's module"
    # Viewing is still allowed.
    assert client.get(reverse("library:module_detail", args=[version.module_id])).status_code == 200


def test_unknown_module_and_version_are_404(client, author):
    version = make_module(author)
    login(client, author)
    assert client.get(reverse("library:module_detail", args=[999999])).status_code == 404
    assert (
        client.get(reverse("library:version_detail", args=[version.module_id, 7])).status_code
        == 404
    )


# ---------------------------------------------------------------- create


def test_create_form_offers_only_active_tags_of_each_kind(client, author, vocabulary):
    Tag.objects.filter(kind=TagKind.MESSAGE, slug="access").update(active=False)
    login(client, author)
    html = client.get(reverse("library:module_create")).content.decode()
    message_block = field_block(html, "message")
    assert "Efficacy" in message_block
    assert "Access" not in message_block
    assert "Outcomes" not in message_block  # a theme is not offered as a message
    themes_block = field_block(html, "themes")
    assert 'type="checkbox"' in themes_block and "Quality Of Life" in themes_block
    channels_block = field_block(html, "channels")
    assert channels_block.count('type="checkbox"') == Channel.objects.count()
    assert 'type="date"' in field_block(html, "expires_on")
    assert 'type="file"' in field_block(html, "image")
    assert "js/library-form.js" in html
    assert 'id="no-references"' in html  # no empty list box before any reference exists


def test_create_form_lists_registered_references(client, author):
    reference_create(actor=author, citation="Roe B. BMJ. 2023;380:e07.")
    login(client, author)
    html = client.get(reverse("library:module_create")).content.decode()
    assert "Roe B. BMJ. 2023;380:e07." in field_block(html, "references")


def test_every_input_has_a_label_on_list_create_and_edit_pages(
    client, author, vocabulary, django_capture_on_commit_callbacks
):
    login(client, author)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("library:module_create"), form_data(image=png_upload()))
    module = Module.objects.get()
    for url in (
        reverse("library:module_list"),
        reverse("library:module_create"),
        reverse("library:module_edit", args=[module.pk]),
    ):
        html = client.get(url).content.decode()
        ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
        assert len(ids) > 5, url
        for input_id in ids:
            assert f'for="{input_id}"' in html, f"no label for {input_id} on {url}"


def test_create_post_makes_module_and_first_draft_and_audit(client, author, vocabulary):
    reference = reference_create(actor=author, citation="Smith J. N Engl J Med. 2025;392:1-10.")
    login(client, author)
    response = client.post(
        reverse("library:module_create"),
        form_data(references=[reference.pk], themes=[tag(TagKind.THEME, "adherence").pk]),
        follow=True,
    )
    assert response.status_code == 200
    version = ModuleVersion.objects.get(title="Fewer events, page form")
    assert version.number == 1 and version.status == VersionStatus.DRAFT
    assert version.module.created_by == author
    assert [t.slug for t in version.themes.all()] == ["adherence"]
    assert {c.slug for c in version.channels.all()} == {"email", "web"}
    assert list(version.references.all()) == [reference]
    assert AuditEntry.objects.filter(action="module.created", version_id=version.pk).exists()
    assert response.redirect_chain[-1][0] == reverse(
        "library:module_detail", args=[version.module_id]
    )
    html = response.content.decode()
    assert "created as a draft (version 1)" in html
    assert "Smith J. N Engl J Med" in html


def test_create_as_variant_links_the_family(client, author, vocabulary):
    original = make_module(author, title="Original claim")
    login(client, author)
    client.post(
        reverse("library:module_create"),
        form_data(title="Empathetic variant", variant_of=original.module_id),
    )
    variant = Module.objects.get(latest__title="Empathetic variant")
    assert variant.variant_of_id == original.module_id
    html = client.get(reverse("library:module_detail", args=[original.module_id])).content.decode()
    assert "Empathetic variant" in html


def test_create_with_image_stores_asset_and_detail_shows_it(
    client, author, vocabulary, django_capture_on_commit_callbacks, settings
):
    login(client, author)
    data = form_data(image=png_upload(size=(300, 200)))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("library:module_create"), data)
    assert response.status_code == 302
    version = ModuleVersion.objects.get(title="Fewer events, page form")
    asset = version.image
    assert asset is not None and (asset.width, asset.height) == (300, 200)
    detail = client.get(response["Location"]).content.decode()
    image_src = reverse("library:image", args=[asset.pk, "web"])
    assert f'src="{image_src}"' in detail
    served = client.get(image_src)
    assert served.status_code == 200
    assert Image.open(io.BytesIO(b"".join(served.streaming_content))).size == (300, 200)


def test_image_files_are_not_served_to_the_engine(client, author, engine, vocabulary):
    login(client, author)
    client.post(reverse("library:module_create"), form_data(image=png_upload()))
    asset = ImageAsset.objects.get()
    client.logout()
    login(client, engine)
    assert client.get(reverse("library:image", args=[asset.pk, "web"])).status_code == 403


def test_unknown_image_rendition_is_404(client, author, vocabulary):
    login(client, author)
    client.post(reverse("library:module_create"), form_data(image=png_upload()))
    asset = ImageAsset.objects.get()
    assert client.get(reverse("library:image", args=[asset.pk, "huge"])).status_code == 404


REQUIRED_MESSAGES = {
    "title": "Enter a title.",
    "brand": "Choose a brand.",
    "market": "Choose a market.",
    "headline": "Enter a headline.",
    "body": "Enter the body text.",
    "key_message": "Enter the key message",
    "message": "Choose a message.",
    "themes": "Choose at least one theme.",
    "tonality": "Choose a tonality.",
    "format": "Choose a format.",
    "channels": "Choose at least one channel.",
}


def test_empty_form_shows_a_message_next_to_every_required_field(client, author, vocabulary):
    login(client, author)
    response = client.post(reverse("library:module_create"), {})
    assert response.status_code == 400
    for name, text in REQUIRED_MESSAGES.items():
        assert_field_error(response, name, text)
    html = response.content.decode()
    assert 'id="error-summary"' in html
    assert 'href="#field-themes"' in html
    assert Module.objects.count() == 0 and ModuleVersion.objects.count() == 0


@pytest.mark.parametrize("missing", sorted(REQUIRED_MESSAGES))
def test_each_missing_field_is_named_and_nothing_is_stored(client, author, vocabulary, missing):
    login(client, author)
    response = client.post(reverse("library:module_create"), form_data(**{missing: None}))
    assert response.status_code == 400
    assert_field_error(response, missing, REQUIRED_MESSAGES[missing])
    assert Module.objects.count() == 0


def test_past_expiry_is_refused_next_to_the_date(client, author, vocabulary):
    login(client, author)
    yesterday = timezone.localdate() - timedelta(days=1)
    response = client.post(
        reverse("library:module_create"), form_data(expires_on=yesterday.isoformat())
    )
    assert response.status_code == 400
    assert_field_error(response, "expires_on", "is in the past; choose today or later")
    assert Module.objects.count() == 0


def test_body_over_the_limit_is_refused_with_the_counts(client, author, vocabulary, settings):
    settings.MODULE_BODY_MAX_CHARS = 100
    login(client, author)
    response = client.post(reverse("library:module_create"), form_data(body="x" * 130))
    assert response.status_code == 400
    assert_field_error(response, "body", "The body is 130 characters; the limit is 100.")
    # The typed text is kept so the author can shorten it.
    assert "x" * 130 in field_block(response.content.decode(), "body")
    assert Module.objects.count() == 0


def test_text_file_named_png_is_refused_and_nothing_is_stored(
    client, author, vocabulary, settings, django_capture_on_commit_callbacks
):
    login(client, author)
    fake = SimpleUploadedFile("photo.png", b"just some text, not pixels", "image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("library:module_create"), form_data(image=fake))
    assert response.status_code == 400
    assert_field_error(response, "image", "not an image")
    assert ImageAsset.objects.count() == 0 and Module.objects.count() == 0
    assert media_files(settings) == []


def test_oversize_image_is_refused_with_413_next_to_the_image(client, author, vocabulary, settings):
    settings.IMAGE_MAX_BYTES = 1000
    login(client, author)
    response = client.post(
        reverse("library:module_create"), form_data(image=png_upload(size=(400, 400)))
    )
    assert response.status_code == 413
    block = field_block(response.content.decode(), "image")
    assert 'id="id_image_error"' in block
    assert ImageAsset.objects.count() == 0 and Module.objects.count() == 0


def test_good_image_with_another_error_stores_no_file(
    client, author, vocabulary, settings, django_capture_on_commit_callbacks
):
    login(client, author)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("library:module_create"), form_data(image=png_upload(), title=None)
        )
    assert response.status_code == 400
    assert_field_error(response, "title", "Enter a title.")
    assert 'id="image-again"' in response.content.decode()  # files are not kept by browsers
    assert ImageAsset.objects.count() == 0
    assert media_files(settings) == []


def test_unknown_choice_is_named_on_its_field(client, author, vocabulary):
    login(client, author)
    response = client.post(reverse("library:module_create"), form_data(channels=["999999"]))
    assert response.status_code == 400
    assert_field_error(response, "channels", "Select a valid choice")


def test_domain_error_from_an_action_lands_on_its_field(author, vocabulary):
    form = ModuleForm(data=form_data())
    assert form.is_valid(), form.errors
    form.add_domain_error(InvalidInput("At least one theme is required.", field="themes"))
    form.add_domain_error(InvalidInput("Something general.", field="not_a_field"))
    assert form.errors["themes"] == ["At least one theme is required."]
    assert form.non_field_errors() == ["Something general."]


# ---------------------------------------------------------------- edit


def test_edit_form_is_prefilled_with_the_latest_version(client, author):
    version = make_module(author, title="Prefilled title", call_to_action="Call us")
    login(client, author)
    response = client.get(reverse("library:module_edit", args=[version.module_id]))
    html = response.content.decode()
    assert 'value="Prefilled title"' in html
    assert 'value="Call us"' in html
    assert "checked" in field_block(html, "themes")
    # Brand and market belong to the module and are not edited here.
    assert 'id="field-brand"' not in html


def test_editing_a_draft_changes_it_in_place(client, author):
    version = make_module(author, title="Draft one")
    login(client, author)
    data = {
        **ModuleForm.initial_from(version),
        "title": "Draft one, reworded",
        "expires_on": version.expires_on.isoformat(),
    }
    response = client.post(reverse("library:module_edit", args=[version.module_id]), data)
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.title == "Draft one, reworded"
    assert version.module.versions.count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Draft version 1 saved." in page


def test_editing_an_approved_module_warns_and_creates_the_next_version(client, author):
    version = make_module(author, title="Approved claim")
    force_status(version, VersionStatus.APPROVED)
    url = reverse("library:module_edit", args=[version.module_id])
    login(client, author)
    notice = client.get(url).content.decode()
    assert "Version 1 is approved. Saving creates version 2 as a draft" in notice
    assert "version 1 keeps serving until version 2 is approved" in notice

    data = {
        **ModuleForm.initial_from(version),
        "headline": "A sharper headline",
        "expires_on": version.expires_on.isoformat(),
    }
    response = client.post(url, data, follow=True)
    versions = {v.number: v for v in version.module.versions.all()}
    assert versions[1].status == VersionStatus.APPROVED
    assert versions[1].headline != "A sharper headline"
    assert versions[2].status == VersionStatus.DRAFT
    assert versions[2].headline == "A sharper headline"
    html = response.content.decode()
    assert "Saved as draft version 2. Version 1 stays approved" in html
    assert 'id="approved-differs"' in html
    history = html[html.index('id="history"') :]
    assert "Version 2" in history and "Version 1" in history


def test_editing_a_module_in_review_is_refused_with_a_message(client, author):
    version = make_module(author, title="Under review")
    force_status(version, VersionStatus.IN_REVIEW)
    url = reverse("library:module_edit", args=[version.module_id])
    login(client, author)
    response = client.get(url, follow=True)
    assert "Version 1 is in review, so it cannot be edited" in response.content.decode()
    response = client.post(url, {**ModuleForm.initial_from(version), "title": "Sneaky"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.title == "Under review"
    assert version.module.versions.count() == 1


def test_edit_without_changes_saves_nothing(client, author):
    version = make_module(author)
    force_status(version, VersionStatus.APPROVED)
    login(client, author)
    data = {**ModuleForm.initial_from(version), "expires_on": version.expires_on.isoformat()}
    response = client.post(
        reverse("library:module_edit", args=[version.module_id]), data, follow=True
    )
    assert "Nothing changed, so nothing was saved." in response.content.decode()
    assert version.module.versions.count() == 1


def test_edit_errors_show_next_to_fields_and_change_nothing(client, author):
    version = make_module(author, title="Keep me")
    login(client, author)
    data = {**ModuleForm.initial_from(version), "title": "", "themes": []}
    data.pop("themes")
    response = client.post(reverse("library:module_edit", args=[version.module_id]), data)
    assert response.status_code == 400
    assert_field_error(response, "title", "Enter a title.")
    assert_field_error(response, "themes", "Choose at least one theme.")
    version.refresh_from_db()
    assert version.title == "Keep me"


def test_edit_shows_the_current_image_and_can_replace_or_remove_it(
    client, author, vocabulary, django_capture_on_commit_callbacks
):
    login(client, author)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("library:module_create"), form_data(image=png_upload(size=(50, 50))))
    version = ModuleVersion.objects.get()
    first_asset = version.image
    url = reverse("library:module_edit", args=[version.module_id])
    html = client.get(url).content.decode()
    assert reverse("library:image", args=[first_asset.pk, "thumbnail"]) in html
    assert 'id="field-remove_image"' in html

    base = {**ModuleForm.initial_from(version), "expires_on": version.expires_on.isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {**base, "image": png_upload(size=(80, 40))})
    version.refresh_from_db()
    assert version.image_id != first_asset.pk and version.image.width == 80

    client.post(url, {**base, "remove_image": "on"})
    version.refresh_from_db()
    assert version.image is None


def test_editing_keeps_a_retired_tag_that_the_version_already_uses(client, author):
    version = make_module(author, title="Uses dosing", message=tag(TagKind.MESSAGE, "dosing"))
    Tag.objects.filter(kind=TagKind.MESSAGE, slug="dosing").update(active=False)
    login(client, author)
    data = {
        **ModuleForm.initial_from(version),
        "title": "Still dosing",
        "expires_on": version.expires_on.isoformat(),
    }
    response = client.post(reverse("library:module_edit", args=[version.module_id]), data)
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.title == "Still dosing" and version.message.slug == "dosing"


# ---------------------------------------------------------------- list


def _titles(response) -> list[str]:
    return re.findall(
        r'<td class="title-cell"><a href="[^"]+">([^<]+)</a>', response.content.decode()
    )


def test_list_shows_each_modules_latest_state(client, author):
    version = make_module(author, title="Listed module", themes=[tag(TagKind.THEME, "adherence")])
    force_status(version, VersionStatus.APPROVED)
    login(client, author)
    response = client.get(reverse("library:module_list"))
    html = response.content.decode()
    assert _titles(response) == ["Listed module"]
    assert '<span class="badge approved">Approved</span>' in html
    for text in ("CardioZen", "UK", "Efficacy", "Adherence", "Clinical", "Email", "Web"):
        assert text in html


def test_list_filters_like_the_api(client, author, other_author):
    make_module(author, title="Safety UK", message=tag(TagKind.MESSAGE, "safety"))
    approved = make_module(other_author, title="Efficacy DE", market="DE")
    force_status(approved, VersionStatus.APPROVED)
    make_module(
        other_author,
        title="Neuro empathetic",
        brand="neurolift",
        tonality=tag(TagKind.TONALITY, "empathetic"),
        channels=list(Channel.objects.filter(slug="rep_visit")),
        themes=[tag(TagKind.THEME, "quality-of-life")],
        format=tag(TagKind.FORMAT, "infographic"),
    )
    login(client, author)
    url = reverse("library:module_list")
    cases = {
        "message=safety": ["Safety UK"],
        "status=approved": ["Efficacy DE"],
        "market=DE": ["Efficacy DE"],
        "brand=neurolift": ["Neuro empathetic"],
        "tonality=empathetic": ["Neuro empathetic"],
        "channel=rep_visit": ["Neuro empathetic"],
        "theme=quality-of-life": ["Neuro empathetic"],
        "format=infographic": ["Neuro empathetic"],
        "q=neuro": ["Neuro empathetic"],
        "mine=true": ["Safety UK"],
        "brand=cardiozen&message=efficacy": ["Efficacy DE"],
    }
    for query, expected in cases.items():
        assert sorted(_titles(client.get(f"{url}?{query}"))) == expected, query


def test_list_keeps_the_chosen_filters_selected(client, author):
    make_module(author, message=tag(TagKind.MESSAGE, "safety"))
    login(client, author)
    html = client.get(reverse("library:module_list") + "?message=safety&q=trial").content.decode()
    assert '<option value="safety" selected>' in html
    assert 'value="trial"' in html


def test_list_explains_an_unknown_filter_value_instead_of_failing(client, author):
    make_module(author)
    login(client, author)
    response = client.get(reverse("library:module_list") + "?message=no-such-tag")
    assert response.status_code == 200
    assert "Some filters were not understood" in response.content.decode()


def test_list_paginates_and_keeps_filters_in_page_links(client, author):
    for n in range(27):
        make_module(author, title=f"Paged {n:02d}")
    login(client, author)
    url = reverse("library:module_list")
    first = client.get(url + "?q=Paged")
    assert len(_titles(first)) == 25
    html = first.content.decode()
    assert "Page 1 of 2" in html
    assert "?q=Paged&amp;page=2" in html
    second = client.get(url + "?q=Paged&page=2")
    assert len(_titles(second)) == 2
    assert set(_titles(first)).isdisjoint(_titles(second))


def test_list_query_count_does_not_grow_with_modules(client, author, django_assert_max_num_queries):
    make_module(author, title="One")
    login(client, author)
    url = reverse("library:module_list")
    client.get(url)  # warm the session and user caches
    with django_assert_max_num_queries(1000) as small:
        client.get(url)
    assert len(small.captured_queries) > 3  # the capture really saw the page's queries
    for n in range(20):
        make_module(
            author,
            title=f"More {n}",
            themes=[tag(TagKind.THEME, "outcomes"), tag(TagKind.THEME, "adherence")],
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert len(_titles(response)) == 21


# ---------------------------------------------------------------- detail and versions


def test_detail_shows_content_tags_references_and_history(client, author):
    reference = reference_create(
        actor=author, citation="Doe A. Lancet. 2024;400:12-20.", url="https://example.org/doe"
    )
    version = make_module(
        author,
        title="Detailed",
        headline="A headline HCPs read",
        key_message="The key claim.",
        call_to_action="Book a call",
        references=[reference],
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    login(client, author)
    html = client.get(reverse("library:module_detail", args=[version.module_id])).content.decode()
    for text in (
        "A headline HCPs read",
        "The key claim.",
        "Book a call",
        "Doe A. Lancet. 2024;400:12-20.",
        'href="https://example.org/doe"',
        "Efficacy",
        "Outcomes",
        version.content_hash[:12],
        'id="no-approved"',
        reverse("library:version_detail", args=[version.module_id, 1]),
    ):
        assert text in html, text


def test_detail_marks_when_latest_differs_from_approved(client, author):
    version = make_module(author)
    force_status(version, VersionStatus.APPROVED)
    login(client, author)
    url = reverse("library:module_detail", args=[version.module_id])
    assert 'id="approved-current"' in client.get(url).content.decode()
    version.module.refresh_from_db()
    from content_modules.library.services import module_edit

    module_edit(actor=author, module=version.module, changes={"title": "Reworded"})
    html = client.get(url).content.decode()
    assert 'id="approved-differs"' in html
    assert "Version 1</a> is approved" in html


def test_detail_lists_variants_of_the_same_key_message(client, author):
    root = make_module(author, title="Root claim")
    make_module(author, title="Urgent variant", variant_of=root.module)
    unrelated = make_module(author, title="Unrelated")
    login(client, author)
    html = client.get(reverse("library:module_detail", args=[root.module_id])).content.decode()
    assert "Urgent variant" in html and "Unrelated" not in html
    html = client.get(reverse("library:module_detail", args=[unrelated.module_id])).content.decode()
    assert "No other module carries this key message yet." in html


def test_version_page_shows_that_version_exactly(client, author):
    version = make_module(author, title="First wording")
    force_status(version, VersionStatus.APPROVED)
    from content_modules.library.services import module_edit

    module_edit(actor=author, module=version.module, changes={"title": "Second wording"})
    login(client, author)
    first = client.get(reverse("library:version_detail", args=[version.module_id, 1]))
    html = first.content.decode()
    assert "First wording" in html and "Second wording" not in html
    assert version.content_hash in html
    assert "This is an earlier version." in html
    second = client.get(reverse("library:version_detail", args=[version.module_id, 2]))
    assert "Second wording" in second.content.decode()


# ---------------------------------------------------------------- reuse hints (affinity app)


def _approved_claim(author) -> ModuleVersion:
    from content_modules.affinity.embeddings import embed_versions

    approved = make_module(
        author,
        title="Approved efficacy claim",
        key_message="CardioZen reduced major cardiac events by 24% versus placebo.",
    )
    force_status(approved, VersionStatus.APPROVED)
    embed_versions([approved.pk])
    return approved


def test_edit_form_shows_similar_approved_claims(client, author):
    approved = _approved_claim(author)
    draft = make_module(
        author,
        title="New draft",
        key_message="CardioZen cut major cardiac events by a quarter compared with placebo.",
    )
    login(client, author)
    html = client.get(reverse("library:module_edit", args=[draft.module_id])).content.decode()
    assert "Reuse approved content" in html
    assert f'data-module="{approved.module_id}"' in html


def test_create_form_sent_back_with_errors_shows_similar_approved_claims(client, author):
    approved = _approved_claim(author)
    login(client, author)
    response = client.post(
        reverse("library:module_create"),
        form_data(title=None, key_message="CardioZen lowered major cardiac events by 24%."),
    )
    assert response.status_code == 400
    assert f'data-module="{approved.module_id}"' in response.content.decode()


def test_reference_pdf_is_linked_and_served_to_library_users_only(
    client, author, engine, django_capture_on_commit_callbacks
):
    pdf = SimpleUploadedFile("study.pdf", pdf_bytes(), "application/pdf")
    with django_capture_on_commit_callbacks(execute=True):
        reference = reference_create(actor=author, citation="With a PDF", pdf=pdf)
    version = make_module(author, references=[reference])
    login(client, author)
    html = client.get(reverse("library:module_detail", args=[version.module_id])).content.decode()
    pdf_url = reverse("library:reference_pdf", args=[reference.pk])
    assert f'href="{pdf_url}"' in html
    served = client.get(pdf_url)
    assert served.status_code == 200 and served["Content-Type"] == "application/pdf"
    assert b"".join(served.streaming_content).startswith(b"%PDF-")
    client.logout()
    login(client, engine)
    assert client.get(pdf_url).status_code == 403


def test_editing_after_changes_requested_says_a_new_version_is_made(client, author):
    first = make_module(author, title="Reviewed once")
    force_status(first, VersionStatus.APPROVED)
    from content_modules.library.services import module_edit

    second = module_edit(actor=author, module=first.module, changes={"title": "Second try"})
    force_status(second, VersionStatus.CHANGES_REQUESTED)
    login(client, author)
    html = client.get(reverse("library:module_edit", args=[first.module_id])).content.decode()
    assert "Version 2 (changes requested) cannot change. Saving creates version 3" in html
    assert "Version 1 stays approved and keeps serving until version 3 is approved." in html


def test_module_page_query_count_does_not_grow_with_versions_and_variants(
    client, author, django_assert_max_num_queries
):
    from content_modules.library.services import module_edit

    def grow(version: ModuleVersion, versions: int, variants: int) -> None:
        for n in range(versions - 1):
            force_status(version, VersionStatus.APPROVED if n == 0 else VersionStatus.REJECTED)
            version = module_edit(actor=author, module=version.module, changes={"title": f"v{n}"})
        for n in range(variants):
            make_module(author, title=f"Variant {n}", variant_of=version.module)

    small = make_module(author)
    grow(small, versions=2, variants=1)
    large = make_module(author)
    grow(large, versions=6, variants=5)
    login(client, author)
    # Warm up both: the pre-review checks embed the other module's approved version once.
    client.get(reverse("library:module_detail", args=[small.module_id]))
    client.get(reverse("library:module_detail", args=[large.module_id]))
    with django_assert_max_num_queries(1000) as baseline:
        client.get(reverse("library:module_detail", args=[small.module_id]))
    assert len(baseline.captured_queries) > 3
    with django_assert_max_num_queries(len(baseline.captured_queries)):
        html = client.get(reverse("library:module_detail", args=[large.module_id])).content
    assert html.decode().count("Variant ") >= 5


def test_list_applies_the_valid_filters_when_another_is_unknown(client, author, other_author):
    make_module(author, title="Mine")
    make_module(other_author, title="Theirs")
    login(client, author)
    response = client.get(reverse("library:module_list") + "?mine=true&theme=no-such-theme")
    assert _titles(response) == ["Mine"]
    html = response.content.decode()
    assert 'id="id_mine" value="true" checked' in html
    assert "Some filters were not understood" in html


def test_variant_choices_are_the_first_module_of_each_key_message(client, author):
    root = make_module(author, title="Root of a family")
    variant = make_module(author, title="Family member", variant_of=root.module)
    login(client, author)
    block = field_block(client.get(reverse("library:module_create")).content.decode(), "variant_of")
    assert f'value="{root.module_id}"' in block and "Root of a family" in block
    assert f'value="{variant.module_id}"' not in block
