"""Every role against every API endpoint: no role reaches what it must not.

Endpoints are enumerated from the URL resolver, so a new endpoint without an
entry in POLICY fails ``test_every_endpoint_has_a_policy`` until someone
decides who may use it. Forbidden roles must be refused (401 anonymous, 403 or
404 authenticated) before anything happens; allowed roles must get past the
role check (for reads: a 200).
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver
from PIL import Image

from content_modules.accounts.roles import Role
from content_modules.affinity.models import HCP
from content_modules.delivery.models import Recommendation
from content_modules.library.claims import claim_link_create
from content_modules.library.images import image_asset_create
from content_modules.library.models import VersionStatus
from content_modules.library.services import reference_create
from content_modules.review.services import version_submit
from tests.factories import api_client, force_status, make_module, make_user, pdf_bytes


def png_upload() -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 90, 200)).save(out, "PNG")
    return SimpleUploadedFile("hero.png", out.getvalue(), content_type="image/png")


ANON = "anonymous"
AUTHOR = Role.AUTHOR.value
MEDICAL = Role.MEDICAL.value
LEGAL = Role.LEGAL.value
REGULATORY = Role.REGULATORY.value
ENGINE = Role.ENGINE.value
ADMIN = Role.ADMIN.value
ROLES = [ANON, AUTHOR, MEDICAL, LEGAL, REGULATORY, ENGINE, ADMIN]
REVIEWERS = {MEDICAL, LEGAL, REGULATORY}
PEOPLE = {AUTHOR, ADMIN} | REVIEWERS  # who sees the (unapproved) library
SIGNED_IN = set(ROLES) - {ANON}

# (route name, method) -> roles that may use it. Everyone else is refused.
# Decisions: the engine reads approved content, recommendations, HCPs, events,
# affinities and may train; it may read the vocabularies (the slot and filter
# names) but never the library, reviews or audit. Authors never decide reviews.
POLICY: dict[tuple[str, str], set[str]] = {
    ("api-token", "post"): set(ROLES),  # logging in is public (throttled, lockout)
    ("api-token", "delete"): SIGNED_IN,
    ("api-tokens", "get"): SIGNED_IN,  # one's own tokens
    ("api-tokens", "post"): SIGNED_IN,  # a token for oneself (admins: for anyone)
    ("api-token-detail", "delete"): SIGNED_IN,  # one's own (404 for anyone else's)
    ("api-vocabulary", "get"): SIGNED_IN,
    ("api-vocabulary", "post"): {ADMIN},
    ("api-module-list", "get"): PEOPLE,
    ("api-module-list", "post"): {AUTHOR, ADMIN},
    ("api-module-detail", "get"): PEOPLE,
    ("api-module-detail", "patch"): {AUTHOR, ADMIN},
    ("api-module-versions", "get"): PEOPLE,
    ("api-module-audit", "get"): PEOPLE,
    ("api-reference-list", "get"): PEOPLE,
    ("api-reference-list", "post"): PEOPLE,
    # Uploads: the world's image belongs to an approved version, which the engine may fetch.
    ("api-image", "get"): PEOPLE | {ENGINE},
    ("api-reference-pdf", "get"): PEOPLE,
    ("api-module-submit", "post"): {AUTHOR, ADMIN},
    ("api-module-withdraw", "post"): {ADMIN, MEDICAL, REGULATORY},
    ("api-module-recall", "post"): {AUTHOR, ADMIN},
    ("api-module-annotations", "get"): PEOPLE,
    ("api-module-annotations", "post"): PEOPLE,
    # Claim links: the role check lets people in; the action then asks the version's
    # state (authors on their draft, reviewers on a version in review).
    ("api-module-claim-links", "get"): PEOPLE,
    ("api-module-claim-links", "post"): PEOPLE,
    ("api-claim-link-detail", "get"): PEOPLE,
    ("api-claim-link-detail", "delete"): PEOPLE,
    ("api-module-signatures", "get"): PEOPLE,
    ("api-module-audit-csv", "get"): {ADMIN},
    ("api-audit-csv", "get"): {ADMIN},
    ("api-review-list", "get"): PEOPLE,
    ("api-review-detail", "get"): PEOPLE,
    ("api-review-decision", "post"): REVIEWERS,
    ("api-review-reassign", "post"): {ADMIN},
    ("api-annotation-resolve", "post"): PEOPLE,
    # Role check only: the service then lets only the module's authors mark (403 otherwise).
    ("api-annotation-address", "post"): PEOPLE,
    ("api-version-review-record", "get"): PEOPLE,
    ("api-version-review-record-csv", "get"): PEOPLE,
    ("hcps-bulk", "post"): {ENGINE, ADMIN},
    ("hcp-detail", "get"): {ENGINE, ADMIN},
    ("hcp-detail", "put"): {ENGINE, ADMIN},
    ("events", "post"): {ENGINE, ADMIN},
    ("modules-similar", "post"): PEOPLE,
    ("hcp-affinity", "get"): PEOPLE | {ENGINE},
    ("affinity-train", "post"): {ENGINE, ADMIN},
    ("affinity-model", "get"): PEOPLE | {ENGINE},
    ("affinity-models", "get"): PEOPLE | {ENGINE},
    ("affinity-model-activate", "post"): {ADMIN},
    ("api-recommendations", "post"): {ENGINE, ADMIN},
    ("api-next-best-actions", "post"): {ENGINE, ADMIN},
    ("hcp-engagement-profile", "get"): PEOPLE | {ENGINE},
    ("api-recommendation-detail", "get"): {ENGINE, ADMIN},
    ("api-content-list", "get"): PEOPLE | {ENGINE},
    ("api-content-detail", "get"): PEOPLE | {ENGINE},
    ("api-content-changes", "get"): PEOPLE | {ENGINE},
    ("api-webhooks", "get"): {ADMIN},
    ("api-webhooks", "post"): {ADMIN},
    ("api-webhook-detail", "delete"): {ADMIN},
    ("api-ping", "get"): SIGNED_IN,
    # Experiments: admins start, stop and archive; the engine and admins read results.
    ("api-experiments", "get"): {ENGINE, ADMIN},
    ("api-experiments", "post"): {ADMIN},
    ("api-experiment-detail", "get"): {ENGINE, ADMIN},
    ("api-experiment-stop", "post"): {ADMIN},
    ("api-experiment-archive", "post"): {ADMIN},
    # Content performance: the people deciding what to retire or re-use, not the engine.
    ("api-analytics-content", "get"): PEOPLE,
    ("api-analytics-content-csv", "get"): PEOPLE,
    ("api-analytics-unused", "get"): PEOPLE,
    ("api-analytics-fatigued", "get"): PEOPLE,
}
# Reads whose answer depends on data the fixture does not make (e.g. no trained
# model yet answers 409): allowed roles pass the role check but need not get 200.
# The change feed needs its `changed_since` cursor (400 without one).
READS_NOT_ALWAYS_200 = {
    ("affinity-model", "get"),
    ("hcp-affinity", "get"),
    ("api-content-changes", "get"),
    ("api-experiment-detail", "get"),  # the fixture starts no experiment: 404
}
METHODS = ("get", "post", "put", "patch", "delete")


def api_endpoints() -> list[tuple[str, str, type]]:
    """(route pattern, name, view class) of every route under /api/v1/."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if route.startswith("api/v1/"):
                    found.append((route, p.name, p.callback.view_class))

    walk(get_resolver().url_patterns, "")
    return found


def operations() -> list[tuple[str, str, str]]:
    return [
        (route, name, method)
        for route, name, view in api_endpoints()
        for method in METHODS
        if hasattr(view, method)
    ]


def test_every_endpoint_has_a_policy():
    missing = [(name, method) for _, name, method in operations() if (name, method) not in POLICY]
    assert not missing, f"decide who may use these endpoints and add them to POLICY: {missing}"
    stale = set(POLICY) - {(name, method) for _, name, method in operations()}
    assert not stale, f"POLICY names endpoints that no longer exist: {stale}"


@pytest.fixture
def world(db, author, medical, django_capture_on_commit_callbacks):
    """One object of each kind the routes take, so role checks meet real rows."""
    with django_capture_on_commit_callbacks(execute=True):
        image = image_asset_create(actor=author, upload=png_upload())
        reference = reference_create(
            actor=author, citation="Smith 2025", pdf=SimpleUploadedFile("s.pdf", pdf_bytes())
        )
    draft = make_module(author, references=[reference])
    link = claim_link_create(
        actor=author, version=draft, field="body", start=0, end=2, reference=reference
    )
    approved = make_module(author, image=image)
    force_status(approved, VersionStatus.APPROVED)
    in_review = make_module(author)
    review = version_submit(actor=author, module=in_review.module)
    task = review.tasks.first()
    hcp = HCP.objects.create(external_id="HCP-1")
    rec = Recommendation.objects.create(hcp=hcp, hcp_external_id="HCP-1", policy="greedy")
    return {
        "id": {
            "api-module-detail": draft.module_id,
            "api-review-detail": task.pk,
            "api-review-decision": task.pk,
            "api-review-reassign": task.pk,
            "api-annotation-resolve": 999_999,
            "api-annotation-address": 999_999,
            "api-version-review-record": approved.pk,
            "api-version-review-record-csv": approved.pk,
            "api-image": image.pk,
            "api-reference-pdf": reference.pk,
            "api-claim-link-detail": link.pk,
            "api-token-detail": 2**31 - 1,  # nobody's: the loop's own token must live
        },
        "module_id": approved.module_id,
        "reference_id": reference.pk,
        "kind": "message",
        "external_id": hcp.external_id,
        "recommendation_id": rec.pk,
        "module": approved.module_id,
        "author": author,
    }


def url_for(route: str, name: str, world: dict) -> str:
    path = "/" + route
    values = {
        "<int:id>": world["id"].get(name, world["module_id"]),
        "<str:kind>": world["kind"],
        "<str:external_id>": world["external_id"],
        "<uuid:recommendation_id>": world["recommendation_id"],
        "<uuid:model_id>": "00000000-0000-0000-0000-000000000000",
        "<int:module>": world["module"],
        "<int:webhook_id>": 999_999,
        "<str:rendition>": "web",
    }
    for placeholder, value in values.items():
        path = path.replace(placeholder, str(value))
    assert "<" not in path, f"add a value for the parameter in {route}"
    return path


def client_for(role: str, world: dict):
    if role == ANON:
        return api_client(None)
    if role == AUTHOR:  # the owner of the fixture's modules, so object checks pass
        return api_client(world["author"])
    extra = {"is_staff": True} if role == ADMIN else {}
    return api_client(make_user(role, **extra))


@pytest.mark.parametrize("role", ROLES)
def test_role_against_every_endpoint(world, role):
    client = client_for(role, world)
    failures = []
    for route, name, method in operations():
        if (name, method) == ("api-token", "delete"):
            continue  # revoking would log this client out for the rest of the loop
        url = url_for(route, name, world)
        response = getattr(client, method)(url, {}, format="json")
        allowed = role in POLICY[(name, method)]
        code = response.status_code
        if not allowed:
            expected = {401} if role == ANON else {403, 404}
            if code not in expected:
                failures.append(f"{method.upper()} {url}: {role} got {code}, must be refused")
        elif code in (401, 403):
            failures.append(f"{method.upper()} {url}: {role} refused ({code}) but allowed")
        elif method == "get" and code != 200 and (name, method) not in READS_NOT_ALWAYS_200:
            failures.append(f"GET {url}: {role} got {code}, expected 200")
        assert code != 500, f"{method.upper()} {url} as {role}: 500"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", [ENGINE, AUTHOR, ADMIN])
def test_a_revoked_or_made_up_token_is_refused_everywhere(db, world, role):
    client = api_client(None)
    client.credentials(HTTP_AUTHORIZATION=f"Token {uuid.uuid4().hex}")
    for route, name, method in operations():
        if (name, method) == ("api-token", "post"):
            continue
        response = getattr(client, method)(url_for(route, name, world), {}, format="json")
        assert response.status_code == 401, (method, route, response.status_code)


def test_nul_characters_in_an_hcp_profile_are_400_not_500(engine):
    # Found by schemathesis: PostgreSQL refuses NUL in text and jsonb.
    client = api_client(engine)
    for body in ({"specialty": "a\x00b"}, {"attributes": {"k\x00": "v"}}):
        response = client.put("/api/v1/hcps/HCP-NUL", body, format="json")
        assert response.status_code == 400, response.content
    assert not HCP.objects.filter(external_id="HCP-NUL").exists()


def test_csv_exports_ignore_an_unknown_format_parameter(admin_user):
    # Found by schemathesis: ?format=AAA answered a 404 with no body or content type.
    response = api_client(admin_user).get("/api/v1/audit.csv?format=AAA")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
