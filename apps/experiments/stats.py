"""Statistics for A/B tests of sales-assistant messages (pure functions, no database).

Each arm of a test is a `Proportion`: how many conversations (trials) reached the goal
(successes), e.g. a lead captured or a booking made. The product reports:

* for each arm's rate, the Wilson score interval (`wilson_interval`), which stays inside
  [0, 1] and behaves well for small counts and rates near 0 or 1, unlike the Wald interval;
* for the difference variant - control, Newcombe's hybrid score interval built from the two
  Wilson intervals (method 10 in Newcombe, "Interval estimation for the difference between
  independent proportions", Statistics in Medicine 17, 1998);
* the verdict, from a two-sided pooled two-proportion z-test (frequentist): the variant is
  "better" or "worse" when the p-value is below alpha, "no_difference" otherwise.
  The verdict comes from the p-value alone; the Newcombe interval is a different method and
  can, for results right at the threshold, disagree about whether 0 is excluded.

"Not enough data" (verdict `"not_enough_data"`, no better/worse claim whatever the p-value):
either arm has fewer than `min_trials` trials (default 30), or, at the pooled rate, either
arm's expected successes or expected failures are below `min_successes` (default 5) — the
usual rule of thumb for trusting the normal approximation behind the z-test.

`compare_all` tests several variants against one control with a Bonferroni-corrected alpha.
`probability_to_beat` is a plain-language aid shown next to the verdict; it is a
normal-approximation quantity, not a Bayesian posterior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Verdict = Literal["not_enough_data", "better", "worse", "no_difference"]

_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class Proportion:
    """`successes` out of `trials`. Raises ValueError unless 0 <= successes <= trials."""

    successes: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise ValueError(f"trials must be >= 0, got {self.trials}")
        if self.successes < 0:
            raise ValueError(f"successes must be >= 0, got {self.successes}")
        if self.successes > self.trials:
            raise ValueError(f"successes ({self.successes}) cannot exceed trials ({self.trials})")

    @property
    def rate(self) -> float:
        """successes / trials; 0.0 when there are no trials (nothing observed yet)."""
        return self.successes / self.trials if self.trials else 0.0


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def _z_two_sided(confidence: float) -> float:
    """The standard normal quantile z with P(-z < Z < z) = confidence."""
    return _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) for the rate successes / trials.

    Returns (0.0, 1.0) when trials == 0: with no observations every rate is possible.
    Raises ValueError for invalid counts (see `Proportion`) or a confidence outside (0, 1).
    """
    Proportion(successes, trials)  # validates the counts
    _check_probability("confidence", confidence)
    if trials == 0:
        return 0.0, 1.0
    z = _z_two_sided(confidence)
    n = trials
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    # The bounds are exactly 0 and 1 at the extremes; set them so rounding (e.g. 2.8e-17)
    # does not leak into reports.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == trials else min(1.0, centre + half_width)
    return low, high


def newcombe_interval(
    control: Proportion, variant: Proportion, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10, 1998) for variant.rate - control.rate.

    Built from each arm's Wilson interval (l, u) at the same confidence:
    low = d - sqrt((p_v - l_v)² + (u_c - p_c)²), high = d + sqrt((u_v - p_v)² + (p_c - l_c)²).
    An arm with no trials contributes its full (0, 1) Wilson interval, so the result is wide.
    """
    _check_probability("confidence", confidence)
    p_v, p_c = variant.rate, control.rate
    l_v, u_v = wilson_interval(variant.successes, variant.trials, confidence)
    l_c, u_c = wilson_interval(control.successes, control.trials, confidence)
    difference = p_v - p_c
    low = difference - math.hypot(p_v - l_v, u_c - p_c)
    high = difference + math.hypot(u_v - p_v, p_c - l_c)
    # Mathematically within [-1, 1]; clamp only against floating-point rounding.
    return max(-1.0, low), min(1.0, high)


def two_proportion_z_test(control: Proportion, variant: Proportion) -> tuple[float, float]:
    """Two-sided pooled two-proportion z-test of variant vs control: (z, p_value).

    z > 0 means the variant's rate is higher. Returns (0.0, 1.0) when the test is undefined:
    an arm has no trials, or the pooled rate is 0 or 1 (no variance, hence no evidence).
    """
    if control.trials == 0 or variant.trials == 0:
        return 0.0, 1.0
    pooled = (control.successes + variant.successes) / (control.trials + variant.trials)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    standard_error = math.sqrt(
        pooled * (1.0 - pooled) * (1.0 / control.trials + 1.0 / variant.trials)
    )
    z = (variant.rate - control.rate) / standard_error
    # 2·Φ(-|z|) rather than 2·(1 - Φ(|z|)): keeps precision for tiny p-values.
    p_value = min(1.0, 2.0 * _STANDARD_NORMAL.cdf(-abs(z)))
    return z, p_value


@dataclass(frozen=True)
class Comparison:
    """The result of comparing a variant with the control (see `compare`).

    `difference` is variant.rate - control.rate (absolute, in rate units); `ci_low`/`ci_high`
    its Newcombe interval at confidence 1 - alpha; `relative_lift` is difference /
    control.rate, None when the control rate is 0; `z`/`p_value` come from the two-sided
    pooled z-test; `verdict` is one of "not_enough_data", "better", "worse", "no_difference".
    """

    control: Proportion
    variant: Proportion
    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    z: float
    p_value: float
    enough_data: bool
    verdict: Verdict


def has_enough_data(
    control: Proportion, variant: Proportion, *, min_trials: int = 30, min_successes: int = 5
) -> bool:
    """Whether the z-test's normal approximation is trusted for these arms.

    False when either arm has fewer than `min_trials` trials, or when, at the pooled rate,
    either arm's expected successes (n·p) or expected failures (n·(1 - p)) are below
    `min_successes`.
    """
    if control.trials < min_trials or variant.trials < min_trials:
        return False
    total = control.trials + variant.trials
    successes = control.successes + variant.successes
    failures = total - successes
    # Expected successes n·S/N < m  <=>  n·S < m·N: integer arithmetic, so a count exactly
    # at the threshold is not lost to floating-point rounding.
    for arm in (control, variant):
        if arm.trials * successes < min_successes * total:
            return False
        if arm.trials * failures < min_successes * total:
            return False
    return True


def compare(
    control: Proportion,
    variant: Proportion,
    *,
    alpha: float = 0.05,
    min_trials: int = 30,
    min_successes: int = 5,
) -> Comparison:
    """Compare `variant` with `control`.

    Verdict: "not_enough_data" when `has_enough_data` is False (whatever the p-value);
    otherwise "better" or "worse" (by the sign of the difference) when p_value < alpha, else
    "no_difference". The difference interval uses confidence 1 - alpha so that it matches
    the test's level. Raises ValueError when alpha is not strictly between 0 and 1.
    """
    _check_probability("alpha", alpha)
    difference = variant.rate - control.rate
    ci_low, ci_high = newcombe_interval(control, variant, confidence=1.0 - alpha)
    relative_lift = difference / control.rate if control.rate > 0 else None
    z, p_value = two_proportion_z_test(control, variant)
    enough_data = has_enough_data(
        control, variant, min_trials=min_trials, min_successes=min_successes
    )
    verdict: Verdict
    if not enough_data:
        verdict = "not_enough_data"
    elif p_value < alpha:
        # p < alpha < 1 implies z != 0, so the difference has a sign.
        verdict = "better" if difference > 0 else "worse"
    else:
        verdict = "no_difference"
    return Comparison(
        control=control,
        variant=variant,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        relative_lift=relative_lift,
        z=z,
        p_value=p_value,
        enough_data=enough_data,
        verdict=verdict,
    )


def compare_all(
    control: Proportion,
    variants: dict[str, Proportion],
    *,
    alpha: float = 0.05,
    **kwargs: int,
) -> dict[str, Comparison]:
    """Compare each variant with the control; returns {name: Comparison} in `variants` order.

    Multiple comparisons: with more than one variant each comparison uses the
    Bonferroni-corrected level alpha / len(variants) — both for its verdict and for its
    difference interval (confidence 1 - alpha / len(variants)) — so the chance of declaring
    any variant better or worse when none differs stays at most alpha. The reported p-values
    are the raw, uncorrected ones. With a single variant this is exactly `compare`.
    `kwargs` (min_trials, min_successes) are passed on to `compare`.
    """
    _check_probability("alpha", alpha)
    level = alpha / len(variants) if len(variants) > 1 else alpha
    return {
        name: compare(control, variant, alpha=level, **kwargs) for name, variant in variants.items()
    }


def probability_to_beat(control: Proportion, variant: Proportion) -> float:
    """Normal-approximation probability that the variant's true rate exceeds the control's.

    Φ(d / sqrt(v_c + v_v)) with d = variant.rate - control.rate and each arm's variance
    v = rate·(1 - rate)/trials (unpooled). This is NOT a Bayesian posterior probability (no
    prior, no Beta posterior); it is a plain-language companion to the frequentist verdict and
    must not replace it. Returns 0.5 when either arm has no trials. When both variances are 0
    (every rate 0 or 1) it returns the degenerate limit: 1.0 or 0.0 by the sign of d, 0.5
    when d == 0.
    """
    if control.trials == 0 or variant.trials == 0:
        return 0.5
    difference = variant.rate - control.rate
    variance = (
        control.rate * (1.0 - control.rate) / control.trials
        + variant.rate * (1.0 - variant.rate) / variant.trials
    )
    if variance == 0.0:
        return 1.0 if difference > 0 else 0.0 if difference < 0 else 0.5
    return _STANDARD_NORMAL.cdf(difference / math.sqrt(variance))
