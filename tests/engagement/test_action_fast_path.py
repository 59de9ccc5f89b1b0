"""The next-best-actions view's direct check of plainly valid bodies agrees with its serializer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_modules.engagement.api import ActionRequestSerializer, plainly_valid_action

slugs = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)
texts = st.one_of(slugs, st.text(max_size=40), st.just(""), st.just(" email "))
ints = st.one_of(
    st.integers(min_value=-3, max_value=800),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
fields = {
    "hcp": st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{1,70}", fullmatch=True), texts, ints),
    "channels": st.one_of(st.lists(st.one_of(slugs, texts, ints), max_size=22), texts, st.none()),
    "horizon_hours": st.one_of(ints, st.none()),
    "k": st.one_of(ints, st.none()),
    "brand": st.one_of(st.none(), texts, ints),
    "market": st.one_of(st.none(), texts, ints),
    "explore": st.one_of(st.booleans(), ints, texts, st.none()),
    "exclude": st.one_of(st.none(), st.lists(ints, max_size=5), ints),
    "context": st.one_of(json_values, st.dictionaries(st.text(max_size=5), json_values)),
    "request_id": st.one_of(texts, st.uuids().map(str)),
    "surprise": json_values,
}
required = {"hcp": fields.pop("hcp"), "channels": fields.pop("channels")}
bodies = st.fixed_dictionaries(required, optional=fields)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(bodies, json_values))
def test_what_the_direct_check_accepts_the_serializer_accepts_equally(body):
    direct = plainly_valid_action(body)
    if direct is None:
        return
    serializer = ActionRequestSerializer(data=body)
    assert serializer.is_valid(), (body, serializer.errors)
    assert direct == dict(serializer.validated_data)


def test_the_common_bodies_take_the_direct_check():
    week = {"hcp": "S-0000001", "channels": ["email", "web"], "horizon_hours": 168, "k": 3}
    for body in (
        week,
        {**week, "brand": "speed", "market": "UK", "explore": True},
        {"hcp": "H", "channels": ["web"]},
    ):
        expected = ActionRequestSerializer(data=body)
        assert expected.is_valid()
        assert plainly_valid_action(body) == dict(expected.validated_data)
    for body in ({"hcp": "H", "channels": []}, {"hcp": "H", "channels": ["email"], "k": "3"}, []):
        assert plainly_valid_action(body) is None
