"""Risk-controlled release: pick the most permissive threshold whose unsafe-release
rate is certified below the tolerated risk, from a finite calibration set.

A case is *released* when its risk score is at or below the threshold ``t``; it is
*unsafe* when any landmark is more than 4 mm off. The risk of ``t`` is
``R(t) = P(released and unsafe)`` over the population the calibration cases come
from. Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei: "Learn then Test:
Calibrating Predictive Algorithms to Achieve Risk Control", 2021) turns this into
multiple testing: for each candidate ``t`` the null hypothesis ``R(t) > alpha`` has
the exact binomial p-value ``P(Binomial(n, alpha) <= k(t))``, where ``k(t)`` counts
the calibration cases released and unsafe. Candidates are tested in a fixed order,
strictest first, and testing stops at the first one not rejected (fixed-sequence
testing, family-wise error ``delta``): with probability at least ``1 - delta`` over
the calibration draw, the chosen threshold has ``R(t) <= alpha``.

``max_unsafe_observed`` adds a plain empirical rule on top (the default 0: no
released calibration case may be unsafe). The reported bound is the one-sided
Clopper-Pearson upper limit on ``R(t)`` given ``k`` of ``n``, so an admin sees what
the number of calibration cases can and cannot promise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import beta, binom


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence limit of a binomial proportion (k events in n)."""
    if n <= 0:
        return 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if k == n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def risk_p_value(k: int, n: int, alpha: float) -> float:
    """Exact p-value of H0 ``risk > alpha`` after ``k`` events in ``n`` (binomial tail)."""
    return float(binom.cdf(k, n, alpha))


@dataclass(frozen=True)
class RiskDecision:
    threshold: float | None  # release when score <= threshold; None: release nothing
    n: int
    released: int
    unsafe_released: int
    alpha: float
    delta: float
    unsafe_rate_upper: float  # Clopper-Pearson (1 - delta) upper bound of R(threshold)
    tested: list[dict] = field(default_factory=list)

    @property
    def release_rate(self) -> float:
        return self.released / self.n if self.n else 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["release_rate"] = self.release_rate
        return data


def learn_then_test(
    scores: np.ndarray,
    unsafe: np.ndarray,
    *,
    alpha: float,
    delta: float = 0.05,
    max_unsafe_observed: int | None = 0,
    candidates: np.ndarray | None = None,
) -> RiskDecision:
    """The most permissive certified threshold (see the module docstring).

    ``scores``: one risk score per calibration case (higher = riskier); ``unsafe``: the
    case's truth (any landmark over the tolerance). ``candidates`` default to the
    distinct scores themselves."""
    s = np.asarray(scores, dtype=float)
    u = np.asarray(unsafe, dtype=bool)
    if s.shape != u.shape or s.ndim != 1:
        raise ValueError("scores and unsafe must be 1-D arrays of the same length")
    if not (0 < alpha < 1 and 0 < delta < 1):
        raise ValueError("alpha and delta must lie in (0, 1)")
    n = len(s)
    grid = np.unique(s if candidates is None else np.asarray(candidates, dtype=float))
    order = np.argsort(s, kind="stable")
    cum_unsafe = np.concatenate([[0], np.cumsum(u[order])])
    counts = np.searchsorted(s[order], grid, side="right")  # released at each candidate
    ks = cum_unsafe[counts]
    ps = binom.cdf(ks, n, alpha)
    ok = ps <= delta
    if max_unsafe_observed is not None:
        ok &= ks <= max_unsafe_observed
    stop = int(np.argmin(ok)) if not ok.all() else len(grid)  # first not rejected
    chosen = float(grid[stop - 1]) if stop > 0 else None
    tested = [
        {"threshold": float(t), "released": int(c), "unsafe_released": int(k),
         "p_value": float(p), "rejected": bool(r)}
        for t, c, k, p, r in zip(grid[: stop + 1], counts, ks, ps, ok, strict=False)
    ]  # fmt: skip
    if chosen is None:
        return RiskDecision(None, n, 0, 0, alpha, delta, clopper_pearson_upper(0, n, 1 - delta),
                            tested)  # fmt: skip
    released = s <= chosen
    k = int((released & u).sum())
    return RiskDecision(
        chosen, n, int(released.sum()), k, alpha, delta,
        clopper_pearson_upper(k, n, 1 - delta), tested,
    )  # fmt: skip


def tradeoff_curve(scores: np.ndarray, unsafe: np.ndarray, points: int = 21) -> list[dict]:
    """Release rate against unsafe releases over a grid of thresholds (score quantiles)."""
    s = np.asarray(scores, dtype=float)
    u = np.asarray(unsafe, dtype=bool)
    out = []
    for q in np.linspace(0, 1, points):
        t = float(np.quantile(s, q))
        released = s <= t
        out.append({"threshold": t, "release_rate": float(released.mean()),
                    "unsafe_released": int((released & u).sum())})  # fmt: skip
    return out
