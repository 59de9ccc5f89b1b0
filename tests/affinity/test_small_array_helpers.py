"""The request path's cheap stand-ins for numpy helpers give numpy's own answers.

Serving works on one HCP's few dozen events, where ``np.unique`` and ``np.clip``
cost more in dispatch than in work; ``features.unique_inverse`` and
``features.clip`` replace them there and in training alike, so they must agree
with numpy on every input, not just on typical ones.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from content_modules.affinity.learning.features import clip, logit, unique_inverse

ints = hnp.arrays(
    np.int64,
    st.integers(0, 200),
    elements=st.integers(-(2**40), 2**40) | st.sampled_from([0, 1, 2, 3]),
)
floats = hnp.arrays(
    np.float64,
    st.integers(0, 50),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
)


@settings(max_examples=300, deadline=None)
@given(ints)
def test_unique_inverse_is_numpys_unique_with_its_inverse(x):
    values, inverse = unique_inverse(x)
    expected_values, expected_inverse = np.unique(x, return_inverse=True)

    assert values.tolist() == expected_values.tolist()
    assert inverse.tolist() == expected_inverse.reshape(-1).tolist()
    assert values[inverse].tolist() == x.tolist()


@settings(max_examples=300, deadline=None)
@given(floats, st.floats(-10, 10), st.floats(0.001, 10))
def test_clip_is_numpys_clip_nan_included(x, low, span):
    high = low + span
    got, expected = clip(x, low, high), np.clip(x, low, high)

    assert np.array_equal(got, expected, equal_nan=True)


def test_logit_of_a_float_and_of_the_bounds():
    assert float(logit(0.5)) == 0.0
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()
