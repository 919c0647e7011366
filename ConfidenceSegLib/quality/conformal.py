"""Split conformal lower bounds for a predicted score (here: predicted Dice).

Calibration: on n held-out cases, residuals ``s_i = predicted_i - true_i``. With
``k = ceil((n + 1)(1 - alpha))`` the k-th smallest residual ``q`` (the ceil((n+1)(1-alpha))/n empirical
quantile) gives, for a new exchangeable case, ``P(true >= predicted - q) >= 1 - alpha`` (marginal
coverage; Vovk et al. 2005, Angelopoulos & Bates 2021). When ``k > n`` (fewer than ``1/alpha - 1``
cases) no finite quantile has that guarantee: ``q = inf`` and the bound is the most conservative one,
the lower end of the score's range.
"""

from __future__ import annotations

import math

import numpy as np

from ..contract import ConfidenceSegError


def conformal_rank(n: int, alpha: float) -> int:
    """The 1-based rank ``k = ceil((n + 1)(1 - alpha))`` of the residual that is the conformal quantile."""
    if not 0 < alpha < 1:
        raise ConfidenceSegError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    # the small tolerance keeps (n + 1)(1 - alpha) = 9.000000000000002 from rounding up to 10
    return math.ceil((n + 1) * (1 - alpha) - 1e-9)


def conformal_quantile(residuals, alpha: float) -> float:
    """The k-th smallest residual, ``k = ceil((n + 1)(1 - alpha))``; ``inf`` when ``k > n``."""
    residuals = np.sort(np.asarray(residuals, np.float64).ravel())
    if not np.all(np.isfinite(residuals)):
        raise ConfidenceSegError("conformal calibration got non-finite residuals")
    rank = conformal_rank(len(residuals), alpha)
    return float(residuals[rank - 1]) if rank <= len(residuals) else math.inf


def lower_bound(predicted, quantile: float, floor: float = 0.0, ceiling: float = 1.0):
    """``predicted - quantile`` clipped to [floor, ceiling] (``quantile = inf`` gives ``floor``)."""
    bound = np.clip(np.asarray(predicted, np.float64) - quantile, floor, ceiling)
    return float(bound) if bound.ndim == 0 else bound
