"""Split conformal lower bounds for a predicted score (here: predicted Dice).

Calibration: on n held-out cases, scores ``s_i = (predicted_i - true_i) / scale_i``: the badge normalises
by the difficulty scale :func:`sigma` (bounds tight where a segment looks good, wide where it looks poor);
the RCA assessment of given masks uses plain residuals (scale 1). With
``k = ceil((n + 1)(1 - alpha))`` the k-th smallest residual ``q`` (the ceil((n+1)(1-alpha))/n empirical
quantile) gives, for a new exchangeable case, ``P(true >= predicted - q) >= 1 - alpha`` (marginal
coverage; Vovk et al. 2005, Angelopoulos & Bates 2021). When ``k > n`` (fewer than ``1/alpha - 1``
cases) no finite quantile has that guarantee: ``q = inf`` and the bound is the most conservative one,
the lower end of the score's range. Residuals of several copies of one subject's image (degradations,
perturbed masks) are not independent cases: the badge's fit (:mod:`.fit`) gives a bound only when the
subjects alone are :func:`fewest_cases` or more.
"""

from __future__ import annotations

import math

import numpy as np

from ..contract import ConfidenceSegError

#: Floor of the difficulty scale :func:`sigma` (a predicted Dice of 1 still gets a margin).
SIGMA_FLOOR = 0.05


def sigma(predicted):
    """Difficulty scale of the badge's conformal scores: ``1 - predicted + 0.05``, larger where the predicted
    Dice is lower. ``predicted``: a number or an array of any shape."""
    return 1.0 - np.asarray(predicted, np.float64) + SIGMA_FLOOR


def conformal_rank(n: int, alpha: float) -> int:
    """The 1-based rank ``k = ceil((n + 1)(1 - alpha))`` of the residual that is the conformal quantile."""
    if not 0 < alpha < 1:
        raise ConfidenceSegError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    # the small tolerance keeps (n + 1)(1 - alpha) = 9.000000000000002 from rounding up to 10
    return math.ceil((n + 1) * (1 - alpha) - 1e-9)


def fewest_cases(alpha: float) -> int:
    """The fewest calibration cases ``n`` whose conformal rank exists (``k <= n``): 9 for alpha 0.1."""
    n = 1
    while conformal_rank(n, alpha) > n:
        n += 1
    return n


def conformal_quantile(residuals, alpha: float) -> float:
    """The k-th smallest residual, ``k = ceil((n + 1)(1 - alpha))``; ``inf`` when ``k > n``."""
    residuals = np.sort(np.asarray(residuals, np.float64).ravel())
    if not np.all(np.isfinite(residuals)):
        raise ConfidenceSegError("conformal calibration got non-finite residuals")
    rank = conformal_rank(len(residuals), alpha)
    return float(residuals[rank - 1]) if rank <= len(residuals) else math.inf


def lower_bound(predicted, quantile: float | None, scale=1.0):
    """The conformal lower bound ``predicted - quantile * scale`` clipped to [0, 1]: the one formula of every
    bound the product shows (the badge passes ``scale=sigma(predicted)``). ``quantile`` None or inf (too few
    calibration cases) gives 0. ``predicted`` and ``scale``: numbers or arrays of one shape."""
    if quantile is None or math.isinf(quantile):
        bound = np.zeros_like(np.asarray(predicted, np.float64))
    else:
        bound = np.clip(np.asarray(predicted, np.float64) - quantile * np.asarray(scale, np.float64), 0.0, 1.0)
    return float(bound) if bound.ndim == 0 else bound
