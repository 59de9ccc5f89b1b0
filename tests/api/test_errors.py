"""One error shape under /api/ (issue 13, point 2): every 4xx is {"code", "detail", "errors"}."""

from __future__ import annotations

import pytest

from tests.factories import api_client, make_module

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    """The answer is the API's one error body with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}, body
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["errors"] and all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in body["errors"].values()
    ), body
    return body


def test_a_bad_item_of_a_list_is_named_with_a_dotted_field(engine):
    response = api_client(engine).post(
        "/api/v1/recommendations", {"hcp": "HCP-1", "exclude": [3, "x"]}, format="json"
    )

    body = assert_error(response, 400, "invalid")
    assert list(body["errors"]) == ["exclude.1"]
    assert body["detail"].startswith("exclude.1: ")


def test_a_nested_object_field_is_dotted_too(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules",
        {
            "title": "T",
            "headline": "H",
            "body": "B",
            "key_message": "K",
            "brand": "cardiozen",
            "market": "UK",
            "channels": ["email"],
            "tags": {"message": "no-such-message", "theme": [], "tonality": "clinical"},
        },
        format="json",
    )

    body = assert_error(response, 400, "invalid")
    assert "tags.message" in body["errors"], body
    assert not any(isinstance(v, dict) for v in body["errors"].values())


def test_a_missing_field_is_invalid_naming_it(engine):
    body = assert_error(
        api_client(engine).post("/api/v1/recommendations", {}, format="json"), 400, "invalid"
    )
    assert "hcp" in body["errors"]


def test_malformed_json_is_a_400_in_the_same_shape(engine):
    response = api_client(engine).post(
        "/api/v1/recommendations", data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-route",
        "/api/nothing",
        "/api/v1/modules/not-a-number",
        "/api/v1/modules/1/versions/x/y",
    ],
)
def test_unknown_routes_and_malformed_path_values_are_json_404s(author, path):
    assert_error(api_client(author).get(path), 404, "not_found")


def test_a_trailing_slash_is_a_json_404_that_says_so(author):
    body = assert_error(api_client(author).get("/api/v1/modules/"), 404, "not_found")
    assert "trailing slash" in body["detail"]


def test_an_unknown_route_is_json_even_without_credentials():
    assert_error(api_client(None).post("/api/v1/nowhere", {}, format="json"), 404, "not_found")


def test_no_credentials_is_401_not_authenticated(vocabulary):
    assert_error(api_client(None).get("/api/v1/vocabularies/message"), 401, "not_authenticated")


def test_a_bad_token_is_401_not_authenticated(vocabulary):
    client = api_client(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/vocabularies/message"), 401, "not_authenticated")


def test_a_wrong_password_at_the_token_endpoint_is_401(author):
    response = api_client(None).post(
        "/api/v1/auth/token", {"username": author.username, "password": "wrong"}, format="json"
    )
    body = assert_error(response, 401, "not_authenticated")
    assert "Wrong username or password" in body["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_a_role_that_may_not_act_is_403_permission_denied(engine, vocabulary):
    response = api_client(engine).post(
        "/api/v1/vocabularies/message", {"slug": "x", "label": "X"}, format="json"
    )
    assert_error(response, 403, "permission_denied")


def test_a_domain_not_found_is_404_naming_the_field(author):
    body = assert_error(api_client(author).get("/api/v1/vocabularies/nope"), 404, "not_found")
    assert "kind" in body["errors"]


def test_a_state_conflict_is_409_conflict(author):
    from content_modules.review.services import version_submit

    module = make_module(author).module
    version_submit(actor=author, module=module)
    # A version in review cannot be edited.
    response = api_client(author).patch(
        f"/api/v1/modules/{module.pk}", {"title": "New"}, format="json"
    )
    assert_error(response, 409, "conflict")


def test_a_method_the_path_does_not_take_is_405_in_the_same_shape(engine):
    response = api_client(engine).delete("/api/v1/recommendations")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_a_body_over_the_limit_is_413_too_large(engine, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = api_client(engine).post(
        "/api/v1/recommendations", {"hcp": "HCP-1", "context": {"x": "y" * 3000}}, format="json"
    )
    assert_error(response, 413, "too_large")


def test_a_nul_in_the_query_is_400_in_the_same_shape(author):
    body = assert_error(api_client(author).get("/api/v1/modules?q=a%00b"), 400, "invalid")
    assert "q" in body["errors"]


@pytest.mark.parametrize("page_size", ["0", "-1", "501", "ten", ""])
def test_page_size_out_of_range_is_400_naming_it(author, page_size):
    response = api_client(author).get(f"/api/v1/modules?page_size={page_size}")
    body = assert_error(response, 400, "invalid")
    assert "page_size" in body["errors"]


@pytest.mark.parametrize("page_size", ["1", "500"])
def test_page_size_at_the_bounds_is_served(author, page_size):
    make_module(author)
    make_module(author)
    response = api_client(author).get(f"/api/v1/modules?page_size={page_size}")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == min(2, int(page_size))


def test_a_page_past_the_end_is_404_not_found(author):
    assert_error(api_client(author).get("/api/v1/modules?page=99"), 404, "not_found")


def test_pages_outside_the_api_keep_their_html_404(author):
    response = api_client(author).get("/library/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- the schema ---------------------------------------------------------------------------------


def _schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_has_exactly_one_error_component():
    schema = _schema()
    components = schema["components"]["schemas"]
    errorish = [name for name in components if "error" in name.lower()]
    assert errorish == ["Error"], errorish
    error = components["Error"]
    assert error["required"] == ["code", "detail", "errors"]
    assert error["properties"]["errors"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }


def test_every_4xx_of_every_operation_is_the_error_component():
    schema = _schema()
    seen = set()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            codes = operation["responses"]
            for required in ("400", "401", "403", "404", "405", "429"):
                assert required in codes, (method, path, required)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(codes), (method, path)
            for code, response in codes.items():
                if code.startswith("4"):
                    seen.add(code)
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, code)
    assert {"400", "401", "403", "404", "405", "409", "413", "415", "429"} <= seen


def test_batch_rejections_are_documented_once():
    components = _schema()["components"]["schemas"]
    # The audit trail's per-action components (AuditDataVersionRejected, ...) name
    # actions, not batch rejections.
    named = [n for n in components if "reject" in n.lower() and not n.startswith("Audit")]
    assert named == ["RejectedItem"]
    assert components["RejectedItem"]["properties"]["errors"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }
