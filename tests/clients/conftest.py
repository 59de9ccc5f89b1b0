"""The served schema, fetched once per module from the live server."""

import httpx
import pytest


@pytest.fixture(scope="module")
def schema_file(live_server, tmp_path_factory):
    """The OpenAPI schema (JSON) as the live server serves it at /api/schema/."""
    answer = httpx.get(f"{live_server.url}/api/schema/?format=json", timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    path.write_bytes(answer.content)
    return path
