"""The recommendations view's direct check of plainly valid bodies agrees with its serializer.

``plainly_valid_request`` answers the serializer's validated data for the
common body, or None (the serializer then decides). For any body at all,
what it accepts the serializer accepts too, with equal validated data.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_modules.delivery.api import RecommendationRequestSerializer, plainly_valid_request

slugs = st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True)
texts = st.one_of(slugs, st.text(max_size=70), st.just(""), st.just(" email "))
ints = st.one_of(
    st.integers(min_value=-3, max_value=60),
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
    "channel": st.one_of(st.none(), texts, ints),
    "brand": st.one_of(st.none(), texts, ints),
    "market": st.one_of(st.none(), texts, ints),
    "k": st.one_of(ints, st.none()),
    "slots": st.one_of(st.none(), st.lists(st.one_of(slugs, texts, ints), max_size=55), texts),
    "exclude": st.one_of(st.none(), st.lists(ints, max_size=5), ints),
    "explore": st.one_of(st.booleans(), ints, texts, st.none()),
    "context": st.one_of(json_values, st.dictionaries(st.text(max_size=5), json_values)),
    "surprise": json_values,
}
bodies = st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(bodies, json_values))
def test_what_the_direct_check_accepts_the_serializer_accepts_equally(body):
    direct = plainly_valid_request(body)
    if direct is None:
        return  # the serializer decides: nothing to compare
    serializer = RecommendationRequestSerializer(data=body)
    assert serializer.is_valid(), (body, serializer.errors)
    assert direct == dict(serializer.validated_data)


def test_the_common_bodies_take_the_direct_check():
    top5 = {"hcp": "S-0000001", "channel": "email", "k": 5, "brand": "speed", "market": "UK"}
    slots = {**top5, "slots": ["efficacy", "safety"], "exclude": [3], "explore": True}
    for body in (top5, slots, {"hcp": "HCP-1"}, {**top5, "context": {"specialty": "x"}}):
        expected = RecommendationRequestSerializer(data=body)
        assert expected.is_valid()
        assert plainly_valid_request(body) == dict(expected.validated_data)
    # and what needs the serializer's word goes to it
    for body in ({"hcp": " HCP-1 "}, {"hcp": "H", "k": "5"}, {"hcp": "H", "k": 51}, []):
        assert plainly_valid_request(body) is None


valid_fields = {
    "channel": st.one_of(st.none(), st.from_regex(r"[a-z0-9_-]{1,32}", fullmatch=True)),
    "brand": st.one_of(st.none(), slugs.filter(lambda s: len(s) <= 64)),
    "market": st.one_of(st.none(), st.from_regex(r"[A-Z]{2}", fullmatch=True)),
    "k": st.integers(min_value=1, max_value=50),
    "slots": st.one_of(
        st.none(), st.lists(slugs.filter(lambda s: len(s) <= 64), min_size=1, max_size=50)
    ),
    "exclude": st.lists(st.integers(min_value=1, max_value=2**62), max_size=20),
    "explore": st.booleans(),
    "context": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
}
valid_bodies = st.fixed_dictionaries(
    {"hcp": st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)}, optional=valid_fields
)


@settings(max_examples=500, deadline=None)
@given(body=valid_bodies)
def test_plainly_valid_bodies_take_the_direct_check_with_the_serializers_answer(body):
    serializer = RecommendationRequestSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    assert plainly_valid_request(body) == dict(serializer.validated_data)
