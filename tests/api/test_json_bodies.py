"""JSON bodies are JSON only (issue 13, point 1): 415 for a form, multipart only for files."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.factories import api_client, make_module

pytestmark = pytest.mark.django_db

FILE_OPERATIONS = {("post", "/api/v1/modules"), ("patch", "/api/v1/modules/{id}"),
                   ("post", "/api/v1/references")}  # fmt: skip


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                yield method, path, operation


def test_every_json_body_is_declared_as_json_only():
    operations = list(_operations())
    assert len(operations) >= 15
    for method, path, operation in operations:
        content = operation["requestBody"]["content"]
        if (method, path) in FILE_OPERATIONS:
            assert set(content) == {"application/json", "multipart/form-data"}, path
            json_ref = content["application/json"]["schema"]["$ref"]
            multipart_ref = content["multipart/form-data"]["schema"]["$ref"]
            # The multipart variant is its own component, and only it carries the file.
            assert json_ref != multipart_ref
        else:
            assert set(content) == {"application/json"}, (method, path, list(content))


def test_only_the_multipart_variants_carry_a_file():
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for name, component in components.items():
        binary = [
            field
            for field, spec in component.get("properties", {}).items()
            if spec.get("format") == "binary"
        ]
        if name.endswith("MultipartRequest"):
            assert binary, name
        else:
            assert not binary, (name, binary)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/plain"],
)
def test_every_json_operation_answers_a_non_json_body_with_415(admin_user, content_type):
    module = make_module(admin_user).module
    client = api_client(admin_user)
    values = {
        "id": str(module.pk),
        "kind": "message",
        "external_id": "HCP-1",
        "model_id": "00000000-0000-4000-8000-000000000001",
    }
    checked = 0
    for method, path, _ in _operations():
        if (method, path) in FILE_OPERATIONS and content_type.startswith("multipart"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        response = getattr(client, method)(url, data="a=b", content_type=content_type)
        assert response.status_code == 415, (method, url, response.content)
        body = response.json()
        assert body["code"] == "unsupported_media_type", body
        assert set(body) == {"code", "detail", "errors"}
        checked += 1
    assert checked >= 12


def test_a_form_body_is_415_even_before_credentials_are_checked():
    response = api_client(None).post(
        "/api/v1/recommendations",
        data="hcp=HCP-1",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_json_body_is_still_taken(engine):
    response = api_client(engine).post("/api/v1/recommendations", {"hcp": "HCP-1"}, format="json")
    assert response.status_code == 200, response.content


def test_a_bodyless_post_needs_no_content_type(author):
    module = make_module(author).module
    response = api_client(author).post(f"/api/v1/modules/{module.pk}/submit")
    assert response.status_code in (200, 201), response.content
