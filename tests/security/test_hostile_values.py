"""Every string and number field of every write endpoint, fed hostile values: never a 5xx.

The endpoints come from the URL resolver (the access matrix's ``operations``)
and their bodies from the OpenAPI schema the API serves, so a new endpoint or
field is walked without anyone listing it. Each field in turn takes each value
below (NUL, lone surrogates, Unicode digits, a number past float range,
non-finite numbers, deep nesting), sent as every role the access policy lets
call the endpoint; the answer must not be a 5xx, and a refused request (4xx)
must leave the library, HCP, event and recommendation tables as they were.
The same values go into every query parameter of every operation.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.delivery.models import Recommendation
from content_modules.library.models import ClaimLink, Module, ModuleVersion, Reference, Tag
from content_modules.review.models import Annotation, Signature
from tests.factories import PASSWORD
from tests.security import test_access_matrix as matrix
from tests.security.test_access_matrix import ANON, POLICY, client_for, operations, url_for

pytestmark = pytest.mark.django_db
world = matrix.world  # the access matrix's fixture: one row of each kind the routes take

DEEP = "[" * 1500 + "]" * 1500


class Raw:
    """JSON text sent as written (json.dumps cannot write 1e400 or 1,500 brackets)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:12]!r})"


HOSTILE: list[Any] = [
    "a\x00b",
    "\udfff",
    "x\ud800",
    "²",
    "١٢",
    10**400,
    Raw("1e400"),
    Raw("-1e400"),
    Raw(DEEP),
]
WRITES = ("post", "put", "patch")
# Tables a refused request must leave alone (login failures and audit rows may grow).
WATCHED = (Module, ModuleVersion, Reference, ClaimLink, Tag, Annotation, Signature, HCP,
           EngagementEvent,
           Recommendation)  # fmt: skip


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _schema_path(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


class Baseline:
    """A plausible body for a request schema, so the walked field is the one refused."""

    def __init__(self, schema: dict) -> None:
        self.components = schema["components"]["schemas"]

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self.components[node["$ref"].rsplit("/", 1)[-1]]
        for key in ("allOf", "oneOf", "anyOf"):
            if key in node:
                return self.resolve(node[key][0])
        return node

    def value(self, node: dict) -> Any:
        node = self.resolve(node)
        if "enum" in node:
            return next(v for v in node["enum"] if v is not None)
        kind = node.get("type")
        if kind == "object":
            return {name: self.value(sub) for name, sub in node.get("properties", {}).items()}
        if kind == "array":
            return [self.value(node.get("items", {}))]
        if kind == "integer":
            return max(1, node.get("minimum", 1))
        if kind == "number":
            return 1.5
        if kind == "boolean":
            return False
        fmt = node.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date-time":
            return timezone.now().isoformat()
        if fmt == "date":
            return (timezone.localdate() + timedelta(days=30)).isoformat()
        return "x"


def _overrides(world: dict) -> dict[str, dict]:
    """Valid values where a generated one would be refused before the walked field."""
    module = world["module_id"]
    tags = {"message": "efficacy", "theme": ["outcomes"], "tonality": "clinical", "format": "text"}
    event = {
        "event_id": str(uuid.uuid4()),
        "hcp": "HCP-1",
        "module": module,
        "type": "read",
        "occurred_at": timezone.now().isoformat(),
        "channel": "email",
        "dwell_seconds": 3.5,
    }
    return {
        "api-token": {"username": "nobody", "password": "wrong"},
        "api-vocabulary": {"slug": "new-term", "label": "New term"},
        "api-module-list": {
            "brand": "cardiozen",
            "market": "UK",
            "channels": ["email"],
            "tags": tags,
            "references": [],
            "variant_of": None,
            "expires_on": None,
            "image": None,
        },  # fmt: skip
        "api-module-detail": {
            "channels": ["email"],
            "tags": tags,
            "references": [],
            "variant_of": None,
            "expires_on": None,
            "image": None,
        },  # fmt: skip
        "api-module-annotations": {"version": 1, "field": "body", "start": 0, "end": 1},
        "api-module-claim-links": {
            "version": 1,
            "field": "body",
            "start": 0,
            "end": 1,
            "reference": world["reference_id"],
        },  # fmt: skip
        "api-module-withdraw": {"reason": "Safety update", "password": PASSWORD},
        "api-review-decision": {
            "decision": "request_changes",
            "password": PASSWORD,
            "checked_references": [],
        },  # fmt: skip
        "hcp-detail": {"preferred_channel": "email", "timezone": "Europe/London"},
        "hcps-bulk": {"hcps": [{"external_id": "HCP-B1", "preferred_channel": "email"}]},
        "events": {"events": [event]},
        "api-recommendations": {
            "hcp": "HCP-1",
            "channel": "email",
            "brand": "cardiozen",
            "market": "UK",
            "slots": ["efficacy"],
            "exclude": [1],
            "context": {"journey_stage": "trial"},
        },  # fmt: skip
        "api-reference-list": {"pdf": None},
    }


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return {k: v for k, v in merged.items() if v is not None or k in override}
    return override


def _fields(body: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every string, number and null leaf, and one new key in every free object."""
    if isinstance(body, dict):
        if not body and path:
            return [(*path, "k")]
        return [p for key, value in body.items() for p in _fields(value, (*path, key))]
    if isinstance(body, list):
        return _fields(body[0], (*path, 0)) if body else [(*path, 0)]
    if isinstance(body, bool):
        return []
    return [path]


def _with(body: Any, path: tuple, value: Any) -> Any:
    """A copy of body with the leaf at path replaced by value."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, list):
        copy: Any = list(body) or [None]
        child = copy[head] if head < len(copy) else None
    elif isinstance(body, dict):
        copy = dict(body)
        child = copy.get(head)
    else:
        copy, child = ({} if isinstance(head, str) else [None]), None
    copy[head] = _with(child, rest, value)
    return copy


def _encode(body: Any) -> bytes:
    raws: dict[str, str] = {}

    def default(value):
        if isinstance(value, Raw):
            marker = f"@@raw{len(raws)}@@"
            raws[marker] = value.text
            return marker
        raise TypeError(type(value))

    text = json.dumps(body, default=default)
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker), raw)
    return text.encode("utf-8", "surrogatepass")


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in WATCHED)


def _write_operations() -> list[tuple[str, str, str]]:
    return [op for op in operations() if op[2] in WRITES]


def test_every_write_endpoint_is_walked():
    schema = _schema()
    walked = {(name, method) for _, name, method in _write_operations()}
    assert {("events", "post"), ("hcp-detail", "put"), ("api-recommendations", "post"),
            ("api-token", "post"), ("api-module-list", "post")} <= walked  # fmt: skip
    for route, _, method in _write_operations():
        assert method in schema["paths"][_schema_path(route)], route


@pytest.mark.parametrize(("route", "name", "method"), _write_operations())
def test_hostile_values_in_every_field_never_answer_5xx(world, route, name, method):
    schema = _schema()
    operation = schema["paths"][_schema_path(route)][method]
    content = operation.get("requestBody", {}).get("content", {})
    baseline = Baseline(schema)
    body: Any = {}
    if "application/json" in content:
        body = baseline.value(content["application/json"]["schema"])
    body = _merge(body, _overrides(world).get(name, {}))
    url = url_for(route, name, world)
    fields = _fields(body) if body else [("k",)]
    failures = []
    # Two of the allowed roles (the first and the last by name): the same validation
    # runs for every role that passes the permission check, and walking all five of
    # the content roles cost CI minutes for no further path.
    allowed = sorted(POLICY[(name, method)])
    for role in dict.fromkeys([allowed[0], allowed[-1]]):
        client = client_for(role, world)
        for path in fields:
            for value in HOSTILE:
                before = _counts()
                data = _encode(_with(body, path, value))
                response = client.generic(
                    method.upper(), url, data, content_type="application/json"
                )
                where = (role, ".".join(map(str, path)), repr(value)[:20])
                if response.status_code >= 500:
                    failures.append((*where, response.status_code))
                elif response.status_code >= 400 and _counts() != before:
                    failures.append((*where, response.status_code, "rows changed"))
    assert not failures, failures[:20]


def _query_operations() -> list[tuple[str, str, str, str]]:
    schema = _schema()
    found = []
    for route, name, method in operations():
        operation = schema["paths"].get(_schema_path(route), {}).get(method, {})
        for parameter in operation.get("parameters", []):
            if method == "get" and parameter.get("in") == "query":
                found.append((route, name, method, parameter["name"]))
    return found


QUERY_HOSTILE = ["a\x00b", "²", "١٢", "1²", "9" * 40, "1e400", "-1", "NaN", "0"]


@pytest.mark.parametrize(("route", "name", "method", "parameter"), _query_operations())
def test_hostile_query_parameters_never_answer_5xx(world, route, name, method, parameter):
    url = url_for(route, name, world)
    failures = []
    role = next(r for r in sorted(POLICY[(name, method)]) if r != ANON)
    client = client_for(role, world)
    for value in QUERY_HOSTILE:
        response = client.get(url, {parameter: value})
        if response.status_code >= 500:
            failures.append((role, value, response.status_code))
    assert not failures, failures


def _pages() -> list[str]:
    """Every page without a path parameter, and every admin list, for the page walk."""
    from django.contrib import admin
    from django.urls import reverse

    pages = []
    for route, _, _ in matrix.api_endpoints():
        if "<" not in route:
            pages.append("/" + route)

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, matrix.URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, matrix.URLPattern):
                route = prefix + str(p.pattern)
                skip = ("api/", "admin/", "static/", "media/", "accounts/logout")
                if "<" not in route and "(?P" not in route and not route.startswith(skip):
                    pages.append("/" + route.lstrip("^").rstrip("$"))

    walk(matrix.get_resolver().url_patterns, "")
    for model in admin.site._registry:
        pages.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    return sorted(set(pages))


PAGE_PARAMETERS = ("q", "brand", "market", "channel", "message", "status", "type", "page", "id")


def test_hostile_query_strings_on_every_page_never_answer_5xx(admin_user, client, world):
    client.force_login(admin_user)
    failures = []
    for url in _pages():
        for value in ("a\x00b", "²", "9" * 40):
            response = client.get(url, dict.fromkeys(PAGE_PARAMETERS, value))
            if response.status_code >= 500:
                failures.append((url, value, response.status_code))
    assert not failures, failures


def test_a_nul_in_the_query_string_is_400_naming_the_parameter(admin_user, client):
    client.force_login(admin_user)
    page = client.get("/affinity/hcps/", {"q": "a\x00b"})
    api = client.get("/api/v1/content", {"brand": "a\x00b"})
    assert page.status_code == 400
    assert api.status_code == 400 and list(api.json()["errors"]) == ["brand"]
