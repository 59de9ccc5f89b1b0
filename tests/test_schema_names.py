"""The served OpenAPI schema gives a generated client names and types it can live with."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

METHODS = ("get", "post", "put", "patch", "delete")
AUDIENCES = {"engine", "authoring", "review", "admin"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method in METHODS:
                yield path, method, operation


def by_id(schema: dict) -> dict[str, dict]:
    return {op["operationId"]: op for _, _, op in operations(schema)}


def test_operation_ids_are_one_snake_case_style_without_version_prefix(schema):
    ids = [op["operationId"] for _, _, op in operations(schema)]

    assert len(ids) == len(set(ids))
    assert [i for i in ids if not SNAKE.match(i) or i.startswith("v1_")] == []
    assert {"recommendations_create", "content_list", "hcp_affinity_retrieve"} <= set(ids)
    assert {"audit_csv_retrieve", "versions_review_record_csv_retrieve"} <= set(ids)


def test_no_component_is_named_request_request(schema):
    names = set(schema["components"]["schemas"])

    assert [n for n in names if n.endswith("RequestRequest")] == []
    assert {"RecommendationRequest", "TokenRequest", "HCPBulkRequest", "SimilarRequest"} <= names


def test_every_operation_has_exactly_one_audience_tag(schema):
    tags = {(path, method): op.get("tags") for path, method, op in operations(schema)}

    assert {k: v for k, v in tags.items() if not v or len(v) != 1 or v[0] not in AUDIENCES} == {}
    assert {t["name"] for t in schema["tags"]} == AUDIENCES
    ops = by_id(schema)
    assert ops["recommendations_create"]["tags"] == ["engine"]
    assert ops["events_create"]["tags"] == ["engine"]
    assert ops["modules_create"]["tags"] == ["authoring"]
    assert ops["reviews_decision_create"]["tags"] == ["review"]
    assert ops["reviews_reassign_create"]["tags"] == ["admin"]
    assert ops["vocabularies_list"]["tags"] == ["authoring"]
    assert ops["vocabularies_create"]["tags"] == ["admin"]


def _has_body(operation: dict) -> bool:
    success = [r for code, r in operation["responses"].items() if code.startswith("2")]
    return bool(operation.get("requestBody")) or any(r.get("content") for r in success)


def _examples(operation: dict) -> list:
    found = []
    for media in operation.get("requestBody", {}).get("content", {}).values():
        found += list(media.get("examples", {}).values())
    for code, response in operation["responses"].items():
        if code.startswith("2"):
            for media in response.get("content", {}).values():
                found += list(media.get("examples", {}).values())
    return found


def test_every_engine_operation_has_a_summary_and_an_example(schema):
    engine = {op["operationId"]: op for _, _, op in operations(schema) if op["tags"] == ["engine"]}

    assert len(engine) >= 15
    assert [i for i, op in engine.items() if not op.get("summary")] == []
    # Token revocation answers 204 with no body: nothing to show an example of.
    with_body = {i: op for i, op in engine.items() if _has_body(op)}
    assert set(engine) - set(with_body) == {"auth_token_destroy", "auth_tokens_destroy"}
    assert [i for i, op in with_body.items() if not _examples(op)] == []
    request = schema["paths"]["/api/v1/recommendations"]["post"]["requestBody"]
    example = next(iter(request["content"]["application/json"]["examples"].values()))
    assert example["value"]["hcp"] == "HCP-123"


def test_docs_page_tells_how_to_get_and_send_a_token(schema):
    text = schema["info"]["description"]

    assert "POST /api/v1/auth/token" in text or "/api/v1/auth/token" in text
    assert "manage.py issue_api_token" in text
    assert "Authorization: Token <key>" in text and "Authorization: Bearer <key>" in text


def test_request_fields_with_defaults_are_not_required(schema):
    request = schema["components"]["schemas"]["RecommendationRequest"]

    assert request["required"] == ["hcp"]
    assert request["properties"]["k"]["default"] == 5
    assert request["properties"]["explore"]["default"] is False


def _props(schema: dict, name: str) -> dict:
    return schema["components"]["schemas"][name]["properties"]


def _ref(prop: dict) -> str:
    """The component a property (or its items) refers to."""
    prop = prop.get("items", prop)
    ref = prop["$ref"] if "$ref" in prop else prop["allOf"][0]["$ref"]
    return ref.rsplit("/", 1)[1]


def test_model_metrics_and_params_are_typed_components(schema):
    model = _props(schema, "Model")
    metrics = _props(schema, _ref(model["metrics"]))
    evaluation = _props(schema, _ref(metrics["evaluation"]))
    methods = _props(schema, _ref(evaluation["methods"]))
    ranking = _props(schema, _ref(methods["model"]))
    gate = _props(schema, _ref(metrics["gate"]))

    assert {"train", "calibration", "gate", "evaluation"} <= set(metrics)
    assert ranking["ndcg_at_5"]["type"] == "number" and "recall_at_5" in ranking
    assert {"brier", "log_loss", "ece", "auc"} <= set(_props(schema, _ref(metrics["train"])))
    assert {"passed", "reason", "popularity", "champion"} <= set(gate)
    assert "ndcg_at_5" in _props(schema, _ref(gate["popularity"]))
    params = schema["components"]["schemas"][_ref(model["params"])]
    assert {"C", "half_life_days", "text_features", "seed"} <= set(params["required"])


def test_logged_recommendation_event_and_review_task_are_typed(schema):
    logged = _props(schema, "LoggedRecommendation")
    request = _props(schema, _ref(logged["request"]))
    event = _props(schema, "LoggedEvent")
    task = _props(schema, "ReviewTaskDetail")

    assert {"hcp", "k", "explore", "slots", "exclude", "context"} <= set(request)
    enum = schema["components"]["schemas"][_ref(event["type"])]
    assert set(enum["enum"]) == {
        "delivered",
        "opened",
        "clicked",
        "read",
        "dismissed",
        "unsubscribed",
    }
    assert event["channel"]["nullable"] is True
    assert {"id", "citation", "checked"} <= set(_props(schema, _ref(task["references"])))
    assert _ref(task["signatures"]) == "Signature"


def test_read_only_user_fields_do_not_carry_the_username_help_text(schema):
    text = str(schema["components"]["schemas"])

    assert "150 characters or fewer" not in text
    assert _props(schema, "Signature")["signer"]["description"] == "Username of the signer."
