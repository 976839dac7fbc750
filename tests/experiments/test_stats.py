"""Tests for apps.experiments.stats: known values checked independently of the module.

The expected numbers were computed separately from the textbook formulas (Wilson's closed form
(2np + z² ± z·sqrt(z² + 4np(1 - p))) / (2(n + z²)), Φ via math.erf) and, for the difference
interval, against the worked example in Newcombe (1998). No database is used.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from apps.experiments.stats import (
    Comparison,
    Proportion,
    compare,
    compare_all,
    probability_to_beat,
    wilson_interval,
)

TOL = 1e-4


def approx(value: float | tuple[float, ...]) -> object:
    return pytest.approx(value, abs=TOL)


# --- Proportion -------------------------------------------------------------------------


def test_proportion_rate() -> None:
    assert Proportion(successes=3, trials=12).rate == 0.25
    assert Proportion(successes=0, trials=5).rate == 0.0
    assert Proportion(successes=5, trials=5).rate == 1.0


def test_proportion_without_trials_has_rate_zero() -> None:
    assert Proportion(successes=0, trials=0).rate == 0.0


@pytest.mark.parametrize(
    ("successes", "trials"),
    [(-1, 10), (0, -1), (-1, -1), (11, 10), (1, 0)],
)
def test_proportion_rejects_invalid_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError):
        Proportion(successes=successes, trials=trials)


def test_proportion_is_frozen() -> None:
    proportion = Proportion(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        proportion.trials = 3  # type: ignore[misc]


# --- Wilson interval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (0, 0, (0.0, 1.0)),
        (81, 263, (0.2553, 0.3662)),
    ],
)
def test_wilson_known_values(successes: int, trials: int, expected: tuple[float, float]) -> None:
    assert wilson_interval(successes, trials) == approx(expected)


def test_wilson_extremes_are_exact() -> None:
    # Exactly 0 / 1, not 2.8e-17 / 0.9999999999999999 from rounding.
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


def test_wilson_other_confidence() -> None:
    assert wilson_interval(8, 10, confidence=0.99) == approx((0.4008, 0.9599))
    # A higher confidence gives a wider interval.
    low95, high95 = wilson_interval(8, 10, 0.95)
    low80, high80 = wilson_interval(8, 10, 0.80)
    assert low80 > low95 and high80 < high95


@pytest.mark.parametrize("trials", [1, 2, 7, 30, 101])
def test_wilson_stays_in_unit_interval_and_contains_rate(trials: int) -> None:
    for successes in range(trials + 1):
        low, high = wilson_interval(successes, trials)
        assert 0.0 <= low <= successes / trials <= high <= 1.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5])
def test_wilson_rejects_invalid_confidence(confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence=confidence)


@pytest.mark.parametrize(("successes", "trials"), [(-1, 10), (11, 10), (0, -1)])
def test_wilson_rejects_invalid_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, trials)


# --- Newcombe difference interval ------------------------------------------------------


def test_newcombe_worked_example() -> None:
    # Newcombe (1998): 56/70 vs 48/80, difference 56/70 - 48/80 = 0.2, method 10 95% CI
    # (0.0524, 0.3339). `difference` is variant - control, so 56/70 is the variant.
    result = compare(Proportion(48, 80), Proportion(56, 70))
    assert result.difference == approx(0.2)
    assert (result.ci_low, result.ci_high) == approx((0.0524, 0.3339))
    assert result.relative_lift == approx(0.2 / 0.6)


def test_newcombe_interval_mirrors_when_arms_swap() -> None:
    result = compare(Proportion(56, 70), Proportion(48, 80))
    assert result.difference == approx(-0.2)
    assert (result.ci_low, result.ci_high) == approx((-0.3339, -0.0524))


def test_newcombe_without_trials_spans_everything() -> None:
    result = compare(Proportion(0, 0), Proportion(0, 0))
    assert (result.ci_low, result.ci_high) == (-1.0, 1.0)


# --- z-test and verdicts -----------------------------------------------------------------


def test_better() -> None:
    # Pooled rate 450/2000 = 0.225; SE = sqrt(0.225·0.775·(2/1000)) = 0.018675;
    # z = 0.05 / 0.018675 = 2.6774; p = 2·(1 - Φ(2.6774)) = 0.0074.
    result = compare(Proportion(200, 1000), Proportion(250, 1000))
    assert isinstance(result, Comparison)
    assert result.difference == approx(0.05)
    assert result.relative_lift == approx(0.25)
    assert result.z == approx(2.6774)
    assert result.p_value == approx(0.0074)
    assert result.enough_data is True
    assert result.verdict == "better"
    assert result.ci_low > 0


def test_worse_when_swapped() -> None:
    result = compare(Proportion(250, 1000), Proportion(200, 1000))
    assert result.z == approx(-2.6774)
    assert result.p_value == approx(0.0074)
    assert result.relative_lift == approx(-0.2)
    assert result.verdict == "worse"
    assert result.ci_high < 0


def test_no_difference() -> None:
    result = compare(Proportion(100, 1000), Proportion(105, 1000))
    assert result.z == approx(0.3686)
    assert result.p_value == approx(0.7124)
    assert result.enough_data is True
    assert result.verdict == "no_difference"
    assert result.ci_low < 0 < result.ci_high


def test_p_value_matches_z() -> None:
    result = compare(Proportion(123, 800), Proportion(151, 790))
    assert result.p_value == pytest.approx(math.erfc(abs(result.z) / math.sqrt(2)), rel=1e-9)


def test_not_enough_data_too_few_trials() -> None:
    result = compare(Proportion(3, 20), Proportion(9, 20))
    assert result.enough_data is False
    assert result.verdict == "not_enough_data"
    # The statistics are still reported.
    assert result.z == approx(2.0702)
    assert result.p_value == approx(0.0384)


def test_min_trials_is_configurable() -> None:
    # Pooled 12/40 = 0.3: expected successes 6 and failures 14 per arm, both >= 5.
    result = compare(Proportion(3, 20), Proportion(9, 20), min_trials=20)
    assert result.enough_data is True
    assert result.verdict == "better"


def test_not_enough_data_too_few_expected_successes() -> None:
    # Pooled 3/2000: 1.5 expected successes per arm, below 5.
    result = compare(Proportion(1, 1000), Proportion(2, 1000))
    assert result.enough_data is False
    assert result.verdict == "not_enough_data"


def test_not_enough_data_too_few_expected_failures() -> None:
    # Pooled 1997/2000: 1.5 expected failures per arm, below 5.
    result = compare(Proportion(998, 1000), Proportion(999, 1000))
    assert result.verdict == "not_enough_data"


def test_not_enough_data_wins_over_a_tiny_p_value() -> None:
    result = compare(Proportion(0, 20), Proportion(15, 20))
    assert result.p_value < 1e-5
    assert result.verdict == "not_enough_data"


def test_min_successes_is_configurable() -> None:
    # Pooled 5/200: 2.5 expected successes per arm — enough when the threshold is 2.
    control, variant = Proportion(0, 100), Proportion(5, 100)
    assert compare(control, variant).verdict == "not_enough_data"
    assert compare(control, variant, min_successes=2).enough_data is True


def test_expected_counts_exactly_at_threshold_are_enough() -> None:
    # Pooled 10/200 = 0.05: exactly 5 expected successes per arm.
    assert compare(Proportion(5, 100), Proportion(5, 100)).enough_data is True


def test_zero_control_rate_has_no_relative_lift() -> None:
    result = compare(Proportion(0, 100), Proportion(5, 100))
    assert result.relative_lift is None
    assert result.difference == approx(0.05)


def test_identical_arms() -> None:
    result = compare(Proportion(50, 500), Proportion(50, 500))
    assert result.z == 0.0
    assert result.p_value == 1.0
    assert result.difference == 0.0
    assert result.relative_lift == 0.0
    assert result.verdict == "no_difference"
    assert result.ci_low < 0 < result.ci_high


@pytest.mark.parametrize(
    ("control", "variant"),
    [
        (Proportion(0, 100), Proportion(0, 100)),  # pooled rate 0
        (Proportion(100, 100), Proportion(100, 100)),  # pooled rate 1
        (Proportion(0, 0), Proportion(5, 50)),  # no control trials
        (Proportion(5, 50), Proportion(0, 0)),  # no variant trials
    ],
)
def test_undefined_test_gives_z_zero_p_one(control: Proportion, variant: Proportion) -> None:
    result = compare(control, variant, min_trials=0, min_successes=0)
    assert result.z == 0.0
    assert result.p_value == 1.0
    assert result.verdict in ("no_difference", "not_enough_data")


def test_empty_arms_are_not_enough_data() -> None:
    result = compare(Proportion(0, 0), Proportion(0, 0))
    assert result.verdict == "not_enough_data"
    assert result.relative_lift is None


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.05, 2.0])
def test_compare_rejects_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError):
        compare(Proportion(10, 100), Proportion(20, 100), alpha=alpha)


def test_alpha_sets_interval_confidence() -> None:
    strict = compare(Proportion(200, 1000), Proportion(250, 1000), alpha=0.01)
    loose = compare(Proportion(200, 1000), Proportion(250, 1000), alpha=0.05)
    assert strict.ci_low < loose.ci_low and strict.ci_high > loose.ci_high


def test_comparison_is_frozen() -> None:
    result = compare(Proportion(10, 100), Proportion(20, 100))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = "better"  # type: ignore[misc]


# --- compare_all (Bonferroni) ---------------------------------------------------------------

# 100/1000 vs 128/1000: pooled 0.114, z = 1.9700, p = 0.0488 — between 0.025 and 0.05.
BONF_CONTROL = Proportion(100, 1000)
BONF_VARIANT = Proportion(128, 1000)


def test_bonferroni_case_p_value() -> None:
    result = compare(BONF_CONTROL, BONF_VARIANT)
    assert result.z == approx(1.9700)
    assert result.p_value == approx(0.0488)


def test_compare_all_single_variant_uses_plain_alpha() -> None:
    results = compare_all(BONF_CONTROL, {"b": BONF_VARIANT})
    assert results["b"].verdict == "better"
    assert results["b"] == compare(BONF_CONTROL, BONF_VARIANT)


def test_compare_all_two_variants_are_bonferroni_corrected() -> None:
    results = compare_all(BONF_CONTROL, {"b": BONF_VARIANT, "c": Proportion(101, 1000)})
    assert list(results) == ["b", "c"]
    assert results["b"].p_value == approx(0.0488)  # raw p-value, not corrected
    assert results["b"].verdict == "no_difference"  # 0.0488 >= 0.05 / 2
    assert results["b"] == compare(BONF_CONTROL, BONF_VARIANT, alpha=0.025)
    assert results["c"].verdict == "no_difference"


def test_compare_all_strong_effect_survives_correction() -> None:
    results = compare_all(
        Proportion(200, 1000),
        {"b": Proportion(250, 1000), "c": Proportion(150, 1000), "d": Proportion(201, 1000)},
    )
    assert {name: r.verdict for name, r in results.items()} == {
        "b": "better",  # p = 0.0074 < 0.05 / 3
        "c": "worse",
        "d": "no_difference",
    }


def test_compare_all_passes_thresholds_on() -> None:
    results = compare_all(BONF_CONTROL, {"b": BONF_VARIANT}, min_trials=5000)
    assert results["b"].verdict == "not_enough_data"


def test_compare_all_without_variants() -> None:
    assert compare_all(BONF_CONTROL, {}) == {}


# --- probability_to_beat -----------------------------------------------------------------


def test_probability_to_beat_equal_arms() -> None:
    assert probability_to_beat(Proportion(50, 500), Proportion(50, 500)) == 0.5
    assert probability_to_beat(Proportion(10, 100), Proportion(50, 500)) == 0.5


def test_probability_to_beat_known_values() -> None:
    # d = 0.05, var = 0.2·0.8/1000 + 0.25·0.75/1000 = 0.0003475, Φ(0.05/0.018641) = Φ(2.6822).
    assert probability_to_beat(Proportion(200, 1000), Proportion(250, 1000)) == approx(0.9963)
    # d = 0.1, var = 0.3·0.7/100 + 0.4·0.6/100 = 0.0045, Φ(1.4907) = 0.9320.
    assert probability_to_beat(Proportion(30, 100), Proportion(40, 100)) == approx(0.9320)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Proportion(200, 1000), Proportion(250, 1000)),
        (Proportion(30, 100), Proportion(40, 100)),
        (Proportion(3, 40), Proportion(1, 25)),
    ],
)
def test_probability_to_beat_is_symmetric(a: Proportion, b: Proportion) -> None:
    assert probability_to_beat(a, b) + probability_to_beat(b, a) == pytest.approx(1.0)


def test_probability_to_beat_without_trials() -> None:
    assert probability_to_beat(Proportion(0, 0), Proportion(5, 10)) == 0.5
    assert probability_to_beat(Proportion(5, 10), Proportion(0, 0)) == 0.5


def test_probability_to_beat_degenerate_variances() -> None:
    assert probability_to_beat(Proportion(0, 100), Proportion(100, 100)) == 1.0
    assert probability_to_beat(Proportion(100, 100), Proportion(0, 100)) == 0.0
    assert probability_to_beat(Proportion(0, 100), Proportion(0, 50)) == 0.5
