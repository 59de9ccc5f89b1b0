"""Every JSON endpoint refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE with 413, not 500."""

from __future__ import annotations

import pytest

from content_modules.delivery.models import Recommendation
from tests.factories import api_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/v1/recommendations", "engine"),
        ("/api/v1/hcps/bulk", "engine"),
        ("/api/v1/auth/token", None),
    ],
)
def test_a_json_body_over_the_limit_is_413_naming_no_field(path, role, request, settings):
    # Given a small body limit and a caller allowed to post there
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    client = api_client(request.getfixturevalue(role)) if role else api_client(None)
    # When it posts a JSON body over the limit
    response = client.post(path, {"hcp": "HCP-1", "context": {"x": "y" * 3000}}, format="json")
    # Then the answer is 413 saying so, and nothing was written
    assert response.status_code == 413, response.content
    assert "limit" in response.json()["errors"]["non_field_errors"][0]
    assert not Recommendation.objects.exists()
