"""Every page: CSRF token in every POST form, a CSP without inline scripts or styles.

Pages are enumerated from the URL resolver (everything outside /api/ and the
media route), rendered for an admin and for each role that uses them, and
scanned: no inline <script>, no <style> blocks, no style= or on*= attributes,
no javascript: URLs, and a csrfmiddlewaretoken in every POST form.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

from content_modules.accounts.roles import Role
from content_modules.affinity.models import HCP
from content_modules.library.models import VersionStatus
from content_modules.review.services import version_submit
from tests.factories import PASSWORD, force_status, make_module, make_user

SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
STYLE_BLOCK = re.compile(r"<style\b", re.I)
INLINE_ATTR = re.compile(r"<[a-z][^>]*\s(style|on[a-z]+)\s*=", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.I | re.S)


def page_routes() -> list[tuple[str, str]]:
    found = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if not route.startswith(("api/", "^media", "admin/")):
                    found.append((route, p.name or ""))

    walk(get_resolver().url_patterns, "")
    return found


# Routes that answer files or only take POST: checked for the header only.
NOT_HTML = {"image", "reference_pdf", "module_audit_csv", "version_record_csv", "audit_csv"}


@pytest.fixture
def world(db, author, medical):
    draft = make_module(author)
    approved = make_module(author)
    force_status(approved, VersionStatus.APPROVED)
    review = version_submit(actor=author, module=draft.module)
    task = review.tasks.get(role="medical")
    HCP.objects.create(external_id="HCP-1")
    return {
        "<int:pk>": draft.module_id,
        "<int:number>": 1,
        "<str:external_id>": "HCP-1",
        "<int:annotation_pk>": 1,
        "<str:rendition>": "web",
        "task_pk": task.pk,
        "medical": medical,
        "author": author,
    }


def url_for(route: str, name: str, world: dict) -> str:
    path = "/" + route
    if name.startswith("task") or name.startswith("annotation"):
        path = path.replace("<int:pk>", str(world["task_pk"]))
    for key, value in world.items():
        if key.startswith("<"):
            path = path.replace(key, str(value))
    return path


def assert_no_inline_code(html: str, where: str) -> None:
    for attrs in SCRIPT.findall(html):
        assert "src=" in attrs, f"{where}: inline <script> (CSP forbids it)"
    assert not STYLE_BLOCK.search(html), f"{where}: <style> block (CSP forbids it)"
    match = INLINE_ATTR.search(html)
    assert not match, f"{where}: inline attribute {match.group(0)[:80]!r}"
    assert not JS_URL.search(html), f"{where}: javascript: URL"


def assert_forms_have_csrf(html: str, where: str) -> int:
    posts = 0
    for attrs, body in FORM.findall(html):
        if re.search(r"method\s*=\s*[\"']?post", attrs, re.I):
            posts += 1
            assert "csrfmiddlewaretoken" in body, f"{where}: POST form without a CSRF token"
    return posts


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUTHOR, Role.MEDICAL])
def test_every_page_has_csp_csrf_and_no_inline_code(world, role):
    user = {Role.AUTHOR: world["author"], Role.MEDICAL: world["medical"]}.get(role) or make_user(
        role, is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(user)
    checked = 0
    for route, name in page_routes():
        url = url_for(route, name, world)
        response = client.get(url)
        assert response.status_code != 500, url
        if response.status_code in (301, 302, 403, 404, 405):
            continue
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, url
        assert "frame-ancestors 'none'" in csp, url
        if name in NOT_HTML or "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        assert_no_inline_code(html, url)
        assert_forms_have_csrf(html, url)
        checked += 1
    assert checked >= 5  # the scan really looked at pages


def test_login_page_has_csrf_and_no_inline_code(db):
    response = Client().get("/accounts/login/")
    html = response.content.decode()
    assert assert_forms_have_csrf(html, "login") == 1
    assert_no_inline_code(html, "login")


def test_post_without_csrf_token_is_refused(db, author, medical):
    draft = make_module(author)
    review = version_submit(actor=author, module=draft.module)
    task = review.tasks.get(role="medical")
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 403
    client.force_login(medical)
    response = client.post(
        f"/review/tasks/{task.pk}/decide/", {"decision": "approve", "password": PASSWORD}
    )
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.status == "open"


def test_session_authenticated_api_write_needs_csrf(db, author):
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    response = client.post("/api/v1/modules", {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()


def test_every_admin_changelist_and_add_page_has_csrf_and_no_inline_code(db):
    from django.contrib import admin
    from django.urls import reverse

    client = Client()
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    urls = ["/admin/"]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 403), (url, response.status_code)
        if response.status_code == 200:
            assert "unsafe-inline" not in response["Content-Security-Policy"]
            html = response.content.decode()
            assert_no_inline_code(html, url)
            assert_forms_have_csrf(html, url)
