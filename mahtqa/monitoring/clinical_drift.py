"""Drift detection for the clinical monitor: a one-sided CUSUM on normal scores.

Each signal of a site (OOD score, image statistics, confidence, correction error) is put
on a common scale against a reference sample drawn from the same kind of cases: the
site's own first ``reference_cases`` cases, or, for a site without that much history,
the pooled cases of the other sites. Every new value becomes a normal score through the
reference's empirical distribution (mid-ranks, so ties such as the zero error of an
accepted case are handled), centred and scaled by the reference's own scores: under "no
change" the scores have mean 0 and sd 1 whatever the shape of the signal (skewed errors,
bounded confidences, a point mass at zero).

A one-sided CUSUM ``S_t = max(0, S_{t-1} + z_t - k)`` alarms when ``S_t > h`` and restarts
at 0 (so a persisting drift alarms again). ``h`` is set for an in-control average run
length (Siegmund's approximation)::

    ARL0 = chains * window_cases / alpha

i.e. over all the chains tested (sites x signals), the expected number of false alarms
per ``window_cases`` healthy cases is ``alpha`` (Bonferroni in the rate). With the default
``alpha = 0.001``, a 50-case window and 12 chains, ``h`` is about 11.4: a shift of one
reference sd is found after about 25 cases, of two sd after about 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.optimize import brentq
from scipy.special import ndtri

K_DEFAULT = 0.5  # the CUSUM reference value: tuned to a shift of one sd
SIEGMUND_OFFSET = 1.166
MARKOV_STATES = 120
H_MAX = 200.0
BOOTSTRAP_SEED = 20260


def arl0(h: float, k: float = K_DEFAULT) -> float:
    """Siegmund's in-control average run length of a one-sided CUSUM of N(0, 1)."""
    b = h + SIEGMUND_OFFSET
    return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)


def cusum_limit(arl: float, k: float = K_DEFAULT) -> float:
    """The limit ``h`` whose in-control run length is ``arl`` for N(0, 1) increments."""
    if arl <= arl0(0.0, k):
        return 0.0
    return float(brentq(lambda h: arl0(h, k) - arl, 0.0, 200.0))


def _chain(h: float, x: np.ndarray, states: int) -> tuple[np.ndarray, np.ndarray]:
    """Brook and Evans' discretisation of ``S = max(0, S + x)`` on [0, h]: for each
    (state, increment) pair that stays in control, its flat index into the (states x
    states) transition matrix, and which increment it is."""
    w = h / (states - 0.5)
    new = np.maximum(0.0, np.arange(states)[:, None] * w + x[None, :])
    ok = new <= h
    j = np.minimum(np.rint(new / w).astype(int), states - 1)
    rows = np.broadcast_to(np.arange(states)[:, None], j.shape)
    cols = np.broadcast_to(np.arange(x.size)[None, :], j.shape)
    return (rows * states + j)[ok], cols[ok]


def arl_markov(
    h: float, increments: np.ndarray, weights: np.ndarray | None = None, *,
    states: int = MARKOV_STATES,
) -> np.ndarray | float:  # fmt: skip
    """Average run length of ``S = max(0, S + x)`` (alarm when ``S > h``) with ``x`` drawn
    from the discrete distribution ``increments`` (equal weights, or each row of
    ``weights``: one run length per row)."""
    x = np.asarray(increments, dtype=float)
    flat, cols = _chain(h, x, states)
    wts = np.full((1, x.size), 1.0 / x.size) if weights is None else np.atleast_2d(weights)
    # Q[b, f] = sum of the weights of the increments landing on matrix cell f
    hits = sparse.csr_matrix((np.ones(flat.size), (cols, flat)), shape=(x.size, states * states))
    q = np.asarray((sparse.csr_matrix(wts) @ hits).todense())
    a = np.eye(states)[None, :, :] - q.reshape(len(wts), states, states)
    with np.errstate(all="ignore"):
        try:
            out = np.linalg.solve(a, np.ones((len(wts), states, 1)))[:, 0, 0]
        except np.linalg.LinAlgError:
            out = np.array([_solve_one(ai) for ai in a])
    out = np.where(np.isfinite(out) & (out > 0), out, np.inf)
    return float(out[0]) if weights is None else out


def _solve_one(a: np.ndarray) -> float:
    try:
        return float(np.linalg.solve(a, np.ones(a.shape[0]))[0])
    except np.linalg.LinAlgError:  # a chain that cannot alarm
        return float("inf")


@lru_cache(maxsize=256)
def _limit_cached(z_key: bytes, arl: float, k: float, samples: int) -> float:
    z = np.frombuffer(z_key, dtype=float)
    weights = np.random.default_rng(BOOTSTRAP_SEED).dirichlet(np.ones(z.size), size=samples)

    def log_rate_gap(h: float) -> float:
        rate = float(np.mean(1.0 / arl_markov(h, z - k, weights)))
        return math.log(max(rate, 1e-300)) + math.log(arl)

    lo, hi = 0.5, 5.0
    while log_rate_gap(hi) > 0 and hi < H_MAX:
        lo, hi = hi, hi * 2
    if hi >= H_MAX:
        return H_MAX
    return float(brentq(log_rate_gap, lo, hi, xtol=0.02))


def cusum_limit_reference(
    reference: np.ndarray, *, arl: float, k: float = K_DEFAULT, samples: int = 64
) -> float:
    """The limit ``h`` whose in-control average run length is ``arl`` cases for this
    signal, accounting for the reference being a finite sample.

    Under "no change" a future case is a draw from the distribution the reference cases
    came from; given the reference, that distribution is uncertain: a Bayesian bootstrap
    (Dirichlet weights on ``n + 1`` units: each reference case, and the gap below the
    smallest) draws ``samples`` plausible ones. A unit's normal score is what a future case
    there scores (a tied value: its mid-rank; a distinct value: the gap just above it).
    For each draw the run length is exact for that discrete distribution (Brook and Evans'
    Markov chain: ties, skew and bounds included); the false-alarm *rates* are averaged
    and ``h`` is solved so that the mean rate is ``1 / arl``. Continuous signals with
    references of one size share one set of scores, so one solve serves them (cached)."""
    z = np.round(np.sort(unit_scores(reference)), 6)
    return _limit_cached(z.tobytes(), float(arl), float(k), int(samples))


def _raw_scores(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    below = np.searchsorted(ref, x, side="left")
    upto = np.searchsorted(ref, x, side="right")
    return ndtri((below + 0.5 * (upto - below) + 0.5) / (ref.size + 1))


def _standardise(ref: np.ndarray) -> tuple[float, float]:
    own = _raw_scores(ref, ref)
    sd = float(own.std())
    if not math.isfinite(sd) or sd < 1e-9:  # a constant reference: any change is a shift
        sd = 1.0
    return float(own.mean()), sd


def unit_scores(reference: np.ndarray) -> np.ndarray:
    """The standardised normal score a future case gets at each of the ``n + 1`` units of
    the reference (see :func:`cusum_limit_reference`)."""
    ref = np.sort(np.asarray(reference, dtype=float))
    n = ref.size
    upto = np.searchsorted(ref, ref, side="right")
    below = np.searchsorted(ref, ref, side="left")
    tied = (upto - below) > 1
    u = np.where(tied, (below + 0.5 * (upto - below) + 0.5), upto + 0.5) / (n + 1)
    raw = np.concatenate([ndtri(u), [ndtri(0.5 / (n + 1))]])
    mean, sd = _standardise(ref)
    return (raw - mean) / sd


def normal_scores(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Normal scores of ``values`` through the reference's empirical distribution (mid-
    ranks), standardised by the reference's own scores (about N(0, 1) under no change)."""
    ref = np.sort(np.asarray(reference, dtype=float))
    mean, sd = _standardise(ref)
    return (_raw_scores(ref, np.asarray(values, dtype=float)) - mean) / sd


@dataclass(frozen=True)
class CusumRun:
    """A CUSUM over a series: every alarm (index, statistic, start of the excursion)."""

    statistic: np.ndarray
    alarms: list[tuple[int, float, int]] = field(default_factory=list)


def cusum(z: np.ndarray, *, h: float, k: float = K_DEFAULT) -> CusumRun:
    """One-sided upper CUSUM of ``z``, restarting after each alarm. The start of an
    excursion (the last index where the statistic was 0, plus one) estimates the change."""
    s, start = 0.0, 0
    stat = np.zeros(len(z))
    alarms: list[tuple[int, float, int]] = []
    for i, zi in enumerate(z):
        s = max(0.0, s + float(zi) - k)
        if s == 0.0:
            start = i + 1
        stat[i] = s
        if s > h:
            alarms.append((i, s, start))
            s, start = 0.0, i + 1
    return CusumRun(statistic=stat, alarms=alarms)


@dataclass(frozen=True)
class DriftFinding:
    """A drift alarm of one chain (site x signal), with the evidence."""

    site: str
    signal: str
    alarm_index: int  # index among the site's cases carrying the signal
    change_index: int  # the estimated start of the drift (same indexing)
    statistic: float
    limit: float
    reference: str  # "site history" or "other sites"
    reference_n: int
    shift_sd: float  # mean normal score from the change to the alarm
    indices: list[int]  # positions (in the site's series) from the change to the alarm
    first_alarm_index: int  # the first alarm of the chain (the bench's detection delay)


def drift_chain(
    *, site: str, signal: str, values: Sequence[float], pooled_other: Sequence[float],
    reference_cases: int, arl: float, recent: int, k: float = K_DEFAULT,
) -> DriftFinding | None:  # fmt: skip
    """The drift test of one chain: its latest alarm, if within the last ``recent`` values.

    ``values``: the site's signal in time order, larger = worse (NaN: the case lacks it);
    ``pooled_other``: the other sites' values in time order (the reference of a site with
    no more than ``reference_cases`` values of its own)."""
    v = np.asarray(values, dtype=float)
    idx = np.flatnonzero(np.isfinite(v))
    x = v[idx]
    if x.size > reference_cases:
        ref, source, start = x[:reference_cases], "site history", reference_cases
    else:
        other = np.asarray(pooled_other, dtype=float)
        other = other[np.isfinite(other)][:reference_cases]
        if other.size < reference_cases or x.size == 0:
            return None
        ref, source, start = other, "other sites", 0
    monitored = x[start:]
    limit = cusum_limit_reference(ref, arl=arl, k=k)
    z = normal_scores(monitored, ref)
    run = cusum(z, h=limit, k=k)
    if not run.alarms:
        return None
    alarm, stat, change = run.alarms[-1]
    if alarm < len(monitored) - recent:
        return None
    return DriftFinding(
        site=site, signal=signal, alarm_index=int(idx[start + alarm]),
        change_index=int(idx[start + change]), statistic=round(float(stat), 3),
        limit=round(limit, 3), reference=source, reference_n=int(ref.size),
        shift_sd=round(float(np.mean(z[change : alarm + 1])), 3),
        indices=[int(idx[start + j]) for j in range(change, alarm + 1)],
        first_alarm_index=int(idx[start + run.alarms[0][0]]),
    )  # fmt: skip
