"""The OpenAPI schema and the browsable docs."""

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

AUTHORING_PATHS = {
    "/api/v1/vocabularies/{kind}": {"get", "post"},
    "/api/v1/modules": {"get", "post"},
    "/api/v1/modules/{id}": {"get", "patch"},
    "/api/v1/modules/{id}/versions": {"get"},
    "/api/v1/modules/{id}/audit": {"get"},
    "/api/v1/references": {"get", "post"},
    "/api/v1/auth/token": {"post", "delete"},
}


@pytest.mark.django_db
def test_schema_is_served_and_lists_the_authoring_endpoints():
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    for path, methods in AUTHORING_PATHS.items():
        assert methods <= set(schema["paths"][path]), path


@pytest.mark.django_db
def test_module_create_documents_json_and_multipart_bodies():
    schema = yaml.safe_load(APIClient().get("/api/schema/").content)

    create = schema["paths"]["/api/v1/modules"]["post"]
    listing = schema["paths"]["/api/v1/modules"]["get"]

    assert {"application/json", "multipart/form-data"} <= set(create["requestBody"]["content"])
    filters = {p["name"] for p in listing["parameters"]}
    assert {"status", "brand", "market", "channel", "message", "theme", "tonality"} <= filters
    assert {"format", "q", "page", "page_size"} <= filters


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "/api/v1/modules" in yaml.safe_load(target.read_text())["paths"]


@pytest.mark.django_db
def test_docs_page_renders_swagger_ui_from_our_own_static_files():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<div id="swagger-ui">' in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    # The CSP allows scripts and styles from 'self' only: a CDN link would load nothing.
    assert "https://" not in page and "http://" not in page
    assert "/api/schema/" in page
