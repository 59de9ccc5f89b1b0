"""HCP profiles: PUT/GET one, bulk upsert, permissions and bad input."""

import pytest

from content_modules.affinity.models import HCP
from tests import factories

PROFILE = {
    "specialty": "cardiology",
    "segment": "digital-first",
    "region": "UK-London",
    "preferred_channel": "email",
    "attributes": {"years_in_practice": 12},
}


@pytest.fixture
def client(engine):
    return factories.api_client(engine)


def test_put_creates_then_replaces_a_profile(client):
    created = client.put("/api/v1/hcps/HCP-123", PROFILE, format="json")
    assert created.status_code == 201
    assert created.json()["specialty"] == "cardiology"
    assert created.json()["attributes"] == {"years_in_practice": 12}

    replaced = client.put("/api/v1/hcps/HCP-123", {"specialty": "oncology"}, format="json")

    assert replaced.status_code == 200
    hcp = HCP.objects.get(external_id="HCP-123")
    assert (hcp.specialty, hcp.segment, hcp.preferred_channel, hcp.attributes) == (
        "oncology",
        "",
        "",
        {},
    )
    assert HCP.objects.count() == 1


def test_get_answers_the_profile_and_404_for_an_unknown_hcp(client):
    client.put("/api/v1/hcps/HCP-1", PROFILE, format="json")

    found = client.get("/api/v1/hcps/HCP-1")
    missing = client.get("/api/v1/hcps/HCP-2")

    assert found.status_code == 200
    body = found.json()
    assert {k: body[k] for k in PROFILE} == PROFILE
    assert body["external_id"] == "HCP-1"
    assert body["unsubscribed_channels"] == []
    assert missing.status_code == 404
    assert "external_id" in missing.json()["errors"]


def test_put_with_a_malformed_external_id_is_rejected_naming_the_field(client):
    response = client.put("/api/v1/hcps/-bad%20id", PROFILE, format="json")

    assert response.status_code == 400
    assert "external_id" in response.json()["errors"]
    assert not HCP.objects.exists()


def test_put_with_an_unknown_channel_and_bad_attributes_names_both_fields(client):
    response = client.put(
        "/api/v1/hcps/HCP-9",
        {"preferred_channel": "fax", "attributes": ["not", "an", "object"]},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "fax" in errors["preferred_channel"][0]
    assert "attributes" in errors
    assert not HCP.objects.exists()


@pytest.mark.parametrize("role", ["author", "medical_reviewer", "legal_reviewer"])
def test_people_other_than_engine_and_admin_may_not_write_profiles(db, role):
    client = factories.api_client(factories.make_user(role))

    put = client.put("/api/v1/hcps/HCP-1", PROFILE, format="json")
    bulk = client.post("/api/v1/hcps/bulk", {"hcps": []}, format="json")

    assert (put.status_code, bulk.status_code) == (403, 403)
    assert not HCP.objects.exists()


def test_anonymous_callers_get_401(db):
    response = factories.api_client().put("/api/v1/hcps/HCP-1", PROFILE, format="json")
    assert response.status_code == 401


def test_admin_may_write_profiles(admin_user):
    response = factories.api_client(admin_user).put("/api/v1/hcps/HCP-1", PROFILE, format="json")
    assert response.status_code == 201


def test_bulk_creates_updates_and_reports_rejected_items_by_index(client):
    client.put("/api/v1/hcps/HCP-1", {"specialty": "oncology"}, format="json")
    payload = {
        "hcps": [
            {"external_id": "HCP-1", **PROFILE},
            {"external_id": "HCP-2", "specialty": "neurology"},
            {"external_id": "bad id!", "specialty": "x"},
            {"external_id": "HCP-3", "preferred_channel": "pigeon"},
            {"external_id": "HCP-2", "specialty": "dermatology"},
            "not an object",
        ]
    }

    response = client.post("/api/v1/hcps/bulk", payload, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 1)
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 5]
    assert "external_id" in rejected[2]
    assert "preferred_channel" in rejected[3]
    assert "more than once" in rejected[4]["external_id"][0]
    assert dict(HCP.objects.values_list("external_id", "specialty")) == {
        "HCP-1": "cardiology",
        "HCP-2": "neurology",
    }


def test_bulk_over_ten_thousand_is_413_naming_hcps(client):
    payload = {"hcps": [{"external_id": f"H{i}"} for i in range(10_001)]}

    response = client.post("/api/v1/hcps/bulk", payload, format="json")

    assert response.status_code == 413
    assert "hcps" in response.json()["errors"]
    assert not HCP.objects.exists()


def test_bulk_without_a_list_is_400_naming_hcps(client):
    response = client.post("/api/v1/hcps/bulk", {"hcps": "HCP-1"}, format="json")
    assert response.status_code == 400
    assert "hcps" in response.json()["errors"]
