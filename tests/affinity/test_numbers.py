"""The figures rule of the reuse finder: a draft stating other figures is a new claim."""

import pytest

from content_modules.affinity.numbers import differing_figures, figures

APPROVED = "CardioZen reduced major adverse cardiac events by 24% versus placebo."


def described(draft: str, approved: str) -> list[str]:
    return [d.describe() for d in differing_figures(draft, approved)]


def test_another_percentage_is_flagged_with_the_approved_one():
    draft = "CardioZen reduced major adverse cardiac events by 30% versus placebo."

    assert described(draft, APPROVED) == ["30% vs approved 24%"]


def test_the_same_figures_are_not_flagged():
    assert differing_figures(APPROVED, APPROVED) == []


def test_reordered_text_with_the_same_figures_is_not_flagged():
    draft = "Versus placebo, at week 12, 24% fewer cardiac events in 1,200 patients."
    approved = "In 1200 patients, cardiac events fell by 24% vs placebo after 12 weeks."

    assert differing_figures(draft, approved) == []


@pytest.mark.parametrize(
    ("draft", "approved"),
    [
        ("reduced by 24 percent", "reduced by 24%"),
        ("reduced by 24 per cent", "reduced by 24 %"),
        ("take 0.5 g once daily", "take 500 mg once daily"),
        ("a 250 mcg dose", "a 250 µg dose"),
        ("p < .001", "p<0.001"),
        ("over 3 months", "over 3 month"),
    ],
)
def test_one_figure_written_in_other_units_is_not_flagged(draft, approved):
    assert differing_figures(draft, approved) == []


@pytest.mark.parametrize(
    ("draft", "approved", "expected"),
    [
        ("take 10 mg daily", "take 10 mL daily", ["10 mg (not in the approved text)"]),
        ("take 20 mg daily", "take 10 mg daily", ["20 mg vs approved 10 mg"]),
        ("significant (p=0.04)", "significant (p<0.001)", ["p=0.04 vs approved p<0.001"]),
        ("LDL fell 45% at week 12", "LDL fell 45% at week 8", ["week 12 vs approved week 8"]),
        ("24 percentage points", "24%", ["24 percentage points (not in the approved text)"]),
    ],
)
def test_doses_p_values_time_points_and_units_that_differ_are_flagged(draft, approved, expected):
    assert described(draft, approved) == expected


def test_figures_the_draft_leaves_out_are_not_a_new_claim():
    approved = "CardioZen reduced events by 24% in 12,000 patients over 3 years."

    assert differing_figures("CardioZen reduced events by 24%.", approved) == []


def test_figures_read_thousands_separators_and_decimals():
    found = figures("12,000 patients; HR 0.76; 1.5 mg")

    assert [(f.value, f.unit) for f in found] == [(12000.0, "patients"), (0.76, ""), (1.5, "mg")]


def test_text_without_figures_has_none():
    assert figures("Once-daily dosing with or without food.") == []


def test_number_words_with_a_unit_are_figures_and_without_one_are_not():
    assert differing_figures("over three years", "over 3 years") == []
    assert described("over four years", "over 3 years") == ["four years vs approved 3 years"]
    assert figures("one of the most common side effects") == []
