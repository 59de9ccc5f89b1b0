"""Any JSON a client sends to the module endpoints answers 201/200 or a 4xx naming a field."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_modules.library.models import Module
from tests.factories import api_client, ensure_vocabulary, make_module, make_user

from .test_api_modules import payload

FIELDS = [*payload().keys(), "image", "unknown"]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
TAG_VALUES = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(("message", "theme", "tonality", "format", "themes"), JSON)
)
OVERRIDES = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4) | st.builds(
    lambda tags: {"tags": tags}, TAG_VALUES
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_clean_answer(response, ok: int) -> None:
    assert response.status_code in (ok, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        errors = response.json()["errors"]
        assert errors and all(isinstance(m, list) and m for m in errors.values()), errors


@pytest.mark.django_db
@FUZZ
@given(overrides=OVERRIDES)
def test_create_with_any_json_is_201_or_400_never_500(overrides):
    ensure_vocabulary()
    author = make_user("author")
    before = Module.objects.count()

    response = api_client(author).post("/api/v1/modules", payload(**overrides), format="json")

    _assert_clean_answer(response, 201)
    assert Module.objects.count() == before + (1 if response.status_code == 201 else 0)


@pytest.mark.django_db
@FUZZ
@given(overrides=OVERRIDES)
def test_patch_with_any_json_is_200_or_400_never_500(overrides):
    author = make_user("author")
    version = make_module(author)

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}", overrides, format="json"
    )

    _assert_clean_answer(response, 200)
