"""Convergence diagnostics of a training history (troubleshooting guide, section 4.1).

``analyze_history(series={"train_loss": [(step, value), ...], "val_loss": ..., "lr": ...,
"grad_norm": ...})`` returns a :class:`ConvergenceReport` whose findings each carry their
evidence: the window of steps, the statistic, its value and the threshold it crossed.
Numpy only. Losses are analysed in log space (relative changes); they are expected to be
positive (values <= 0 are clipped to 1e-12). "Smoothed" is a centred moving average of
log(loss) over ``smooth_points`` points; the initial loss is the geometric mean of the
first smooth_points // 2 + 1 points (a median over a longer head would already be low on
a fast-falling run).

Rules (thresholds: :class:`ConvergenceThresholds`):

- explosion: a non-finite train loss (critical, at the first bad step); a train loss >=
  ``explosion_ratio`` x the running minimum of the smoothed loss (the guide's "loss x10";
  the first ``explosion_burn_in_*`` points only establish that minimum, an early spike is
  the lr schedule's business); a grad norm > ``grad_explosion_ratio`` x the median of the
  earlier grad norms (non-finite grad norms are ignored: AMP loss scaling makes them
  routinely); or, once the smoothed loss has fallen by ``reversal_progress``, it climbs
  back by ``reversal_lost_fraction`` of that fall in log space and by at least
  ``reversal_noise_sds`` noise sds of the smoothed loss (a bounded loss, e.g. the
  spatial cross-entropy, cannot rise x10: it diverges back to chance level). start_step: the first point of the climb. Every other
  loss detector only reads the steps before the first blow-up.
- plateau: over the last ``window_fraction`` of the steps the smoothed train loss falls by
  less than ``plateau_max_decrease`` *and* it sits at >= (1 - ``plateau_min_total_decrease``)
  of its initial value. A run that fell by more than half and then flattens has converged.
- oscillation: in some window the robust sd of log(loss) around its moving-average trend
  is >= ``oscillation_min_variability`` and >= ``oscillation_min_sign_changes`` of the
  first differences change sign (minibatch noise of a healthy run stays below the first).
- val_divergence: after the minimum of the smoothed val loss, a log-linear fit rises by
  >= ``divergence_min_rise`` with t >= ``divergence_min_t`` while the train loss falls by
  >= ``divergence_min_train_decrease`` over the same steps (error).
- overfitting: over the last window the train loss still falls by >=
  ``overfit_min_train_decrease`` while the gap (val - train) / train (val against the train
  trend at the val steps, log-linear fit over the window) ends >= ``overfit_min_gap`` and
  has grown by a factor (1 + gap) >= ``overfit_min_gap_growth``; validation is flat or
  improving slowly. Reported only without val_divergence (the stronger case: val rising).
- lr_schedule: no warm-up (first lr >= ``lr_start_peak_fraction`` x peak) with a train-loss
  spike >= ``lr_spike_ratio`` x the first loss in the first ``lr_warmup_window_fraction``;
  the lr constant (within ``lr_constant_tolerance``) for more than ``lr_constant_fraction``
  of a run longer than ``lr_long_run_steps`` (info); the lr rising >= ``lr_late_increase_ratio``
  x its running minimum after the peak of the first ``lr_warmup_max_fraction`` of the run
  (a broken or restarting scheduler).
- early_stopping_step: the step of the best smoothed val loss when it later worsens by more
  than ``early_stopping_patience`` (relative), or turns non-finite.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

CODES = ("plateau", "oscillation", "explosion", "val_divergence", "overfitting", "lr_schedule")
SEVERITIES = ("info", "warning", "error", "critical")
ALIASES = {
    "train_loss": ("train_loss", "loss"),
    "val_loss": ("val_loss",),
    "lr": ("lr", "learning_rate"),
    "grad_norm": ("grad_norm",),
}
RECOMMENDATIONS = {
    "explosion": (
        "Stop the run and restart from the last good checkpoint",
        "Reduce the learning rate (by a factor of 2-10)",
        "Add gradient clipping with max_norm=1.0",
        "Check the data pipeline for corrupt samples (NaN/inf inputs or targets)",
        "Use a learning-rate warm-up",
    ),
    "plateau": (
        "Adjust the learning rate (by a factor of 2-5) or try a different optimizer",
        "Check the data pipeline for issues (targets aligned with the images)",
        "Verify the loss function implementation",
    ),
    "oscillation": (
        "Reduce the learning rate by a factor of 2-5",
        "Increase the batch size or accumulate gradients",
        "Add gradient clipping with max_norm=1.0",
    ),
    "val_divergence": (
        "Stop early at the best validation step and keep that checkpoint",
        "Add regularisation: weight decay, dropout, stronger augmentation",
        "Check the validation data for leakage or a shift from the training data",
    ),
    "overfitting": (
        "Add regularisation: weight decay, dropout, stronger augmentation",
        "Use early stopping on the validation loss",
        "Use more training data or a smaller model",
    ),
    "lr_schedule": (
        "Use a learning-rate warm-up (e.g. linear over the first 2-10 % of the steps)",
        "Use a decaying schedule (cosine, step or linear decay)",
        "Check that the scheduler is stepped once per step and never reset",
    ),
}


@dataclass(frozen=True)
class ConvergenceThresholds:
    #: points of the centred moving average of log(loss) ("smoothed")
    smooth_points: int = 5
    #: explosion: a train loss >= this x the running minimum of the smoothed loss
    explosion_ratio: float = 10.0
    #: explosion: the blow-up starts at the first point of the climb above this x that minimum
    explosion_onset_ratio: float = 2.0
    #: explosion: the first fraction of the points (at least the count) only set the minimum
    explosion_burn_in_fraction: float = 0.05
    explosion_burn_in_points: int = 5
    #: explosion: a grad norm > this x the median of the earlier grad norms (>= 5 of them)
    grad_explosion_ratio: float = 1e3
    #: explosion: the grad blow-up starts where the grad norm first exceeds this x that median
    grad_onset_ratio: float = 10.0
    #: explosion: relative fall of the smoothed loss before the reversal rule applies
    reversal_progress: float = 0.3
    #: explosion: the smoothed loss climbs back by this share of its fall (log) from the start
    reversal_lost_fraction: float = 0.75
    #: explosion: ... and by at least this many noise sds of the smoothed loss
    reversal_noise_sds: float = 12.0
    #: plateau/overfitting: the last fraction of the steps (at least min_window_points points)
    window_fraction: float = 0.3
    min_window_points: int = 10
    #: plateau: the smoothed loss falls by less than this (relative) over the window ...
    plateau_max_decrease: float = 0.1
    #: plateau: ... or not significantly (slope t statistic above -this)
    plateau_min_t: float = 4.0
    #: plateau: ... and has fallen by less than this since the start (else: converged)
    plateau_min_total_decrease: float = 0.5
    #: oscillation: windows of this fraction of the points (at least the count)
    oscillation_window_fraction: float = 0.2
    oscillation_min_points: int = 20
    #: oscillation: points of the moving-average trend of log(loss)
    oscillation_trend_points: int = 11
    #: oscillation: robust sd (IQR / 1.349) of log(loss) - trend (about relative variability)
    oscillation_min_variability: float = 0.3
    #: oscillation: share of successive first differences that change sign
    oscillation_min_sign_changes: float = 0.25
    #: val_divergence: rise of the log-linear fit since the val minimum, and its t statistic
    divergence_min_rise: float = 0.1
    divergence_min_t: float = 4.0
    #: val_divergence: val points after the minimum
    divergence_min_points: int = 5
    #: val_divergence: relative fall of the train loss over the same steps
    divergence_min_train_decrease: float = 0.03
    #: val points of the val smoothing (divergence, early stopping)
    val_smooth_points: int = 3
    #: overfitting: (val - train) / train at the end of the window
    overfit_min_gap: float = 0.15
    #: overfitting: (1 + gap_end) / (1 + gap_start) over the window
    overfit_min_gap_growth: float = 1.2
    #: overfitting: t statistic of the gap's slope (a noisy train loss fakes a gap otherwise)
    overfit_min_t: float = 3.0
    #: overfitting: log growth >= this x the train noise / sqrt(window points) as well
    overfit_noise_sds: float = 4.0
    #: overfitting: relative fall of the train loss over the window (train still improves)
    overfit_min_train_decrease: float = 0.1
    #: lr: the run starts at the peak when the first lr >= this x the peak lr
    lr_start_peak_fraction: float = 0.9
    #: lr: first fraction of the train points (at least 3) searched for the start spike
    lr_warmup_window_fraction: float = 0.05
    #: lr: start spike = max train loss there / the first train loss
    lr_spike_ratio: float = 3.0
    #: lr: "never decays" on runs longer than this many steps ...
    lr_long_run_steps: int = 1000
    #: ... when the lr stays within lr_constant_tolerance for more than this fraction of them
    lr_constant_fraction: float = 0.8
    lr_constant_tolerance: float = 0.01
    #: lr: the warm-up ends at the last peak within this first fraction of the steps
    lr_warmup_max_fraction: float = 0.3
    #: lr: a later lr >= this x its running minimum since the warm-up is a late increase
    lr_late_increase_ratio: float = 1.1
    #: early stopping: relative worsening of the smoothed val loss over its best
    early_stopping_patience: float = 0.1

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class ConvergenceFinding:
    code: str
    severity: str
    start_step: int
    end_step: int
    statistic: str
    value: float
    threshold: float
    message: str
    recommendations: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "start_step": int(self.start_step),
            "end_step": int(self.end_step),
            "statistic": self.statistic,
            "value": _json_float(self.value),
            "threshold": _json_float(self.threshold),
            "message": self.message,
            "recommendations": list(self.recommendations),
        }


@dataclass(frozen=True)
class ConvergenceReport:
    findings: tuple[ConvergenceFinding, ...]
    early_stopping_step: int | None
    steps_seen: int

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def as_dict(self) -> dict:
        return {
            "codes": sorted(self.codes()),
            "findings": [f.as_dict() for f in self.findings],
            "early_stopping_step": self.early_stopping_step,
            "steps_seen": self.steps_seen,
        }


Series = tuple[np.ndarray, np.ndarray]  # steps (int64, increasing), values (float64)


def _finding(code, severity, start, end, statistic, value, threshold, message, recs=None):
    return ConvergenceFinding(
        code=code,
        severity=severity,
        start_step=int(start),
        end_step=int(end),
        statistic=statistic,
        value=float(value),
        threshold=float(threshold),
        message=message,
        recommendations=tuple(recs or RECOMMENDATIONS[code]),
    )


def _series(series: Mapping[str, Sequence[tuple[int, float]]], name: str) -> Series | None:
    pairs = next((series[k] for k in ALIASES[name] if k in series), None)
    if not pairs:
        return None
    steps = np.array([int(s) for s, _ in pairs], dtype=np.int64)
    values = np.array([math.nan if v is None else float(v) for _, v in pairs])
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    keep = np.r_[steps[1:] != steps[:-1], True]  # a repeated step: the last value logged
    return steps[keep], values[keep]


def _log(v: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(v, 1e-12))


def _smooth(y: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over w points (shrinking at the edges)."""
    if w <= 1 or len(y) < 2:
        return y.astype(float)
    h = w // 2
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(len(y))
    lo, hi = np.maximum(0, i - h), np.minimum(len(y), i + h + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def _fit(x: np.ndarray, y: np.ndarray, ar: bool = False) -> tuple[float, float, float]:
    """Least-squares slope, intercept and the slope's t statistic (ar: its standard error
    widened for lag-1 autocorrelated residuals, as minibatch losses are)."""
    x = x.astype(float)
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    if len(x) < 3 or sxx == 0:
        return 0.0, float(y.mean()), 0.0
    slope = float((dx * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    se = math.sqrt(float((resid**2).sum()) / (len(x) - 2) / sxx)
    if ar and len(x) > 3 and resid.std() > 0:
        r1 = min(0.95, max(0.0, float(np.corrcoef(resid[:-1], resid[1:])[0, 1])))
        se *= math.sqrt((1 + r1) / (1 - r1))
    t = slope / se if se > 0 else math.copysign(math.inf, slope) if slope else 0.0
    return slope, intercept, t


def _initial(y: np.ndarray, t: ConvergenceThresholds) -> float:
    """log of the initial loss: the mean log of the first smooth_points // 2 + 1 points."""
    return float(np.mean(y[: max(1, t.smooth_points // 2 + 1)]))


def _noise(y: np.ndarray, t: ConvergenceThresholds) -> float:
    """Robust sd (IQR / 1.349) of log(loss) around its moving-average trend."""
    q1, q3 = np.percentile(y - _smooth(y, t.oscillation_trend_points), [25, 75])
    return float(q3 - q1) / 1.349


def _tail_start(steps: np.ndarray, fraction: float, min_points: int) -> int:
    a = int(np.searchsorted(steps, steps[-1] - fraction * (steps[-1] - steps[0])))
    return max(0, min(a, len(steps) - min_points))


def _explosion(train: Series | None, grad: Series | None, t: ConvergenceThresholds) -> list:
    out = []
    if train is not None:
        steps, v = train
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.argmax(bad))
            out.append(_finding("explosion", "critical", steps[i], steps[i],
                "number of non-finite train-loss values", bad.sum(), 0,
                f"train loss is {v[i]} at step {steps[i]} ({int(bad.sum())} non-finite values "
                f"of {len(v)}): the run has blown up"))  # fmt: skip
            steps, v = steps[:i], v[:i]
        y = _log(v)
        n, h = len(y), t.smooth_points // 2
        if n > max(t.explosion_burn_in_points, h + 1):
            s = _smooth(y, t.smooth_points)
            runmin = np.minimum.accumulate(s)
            burn = max(
                t.explosion_burn_in_points, math.ceil(t.explosion_burn_in_fraction * n), h + 1
            )
            idx = np.arange(n)
            ref = np.full(n, np.inf)
            ref[burn:] = runmin[idx[burn:] - h - 1]
            hit = np.flatnonzero(y - ref >= math.log(t.explosion_ratio))
            if hit.size:
                i = int(hit[0])
                j = i
                while j > h + 1 and y[j - 1] >= ref[i] + math.log(t.explosion_onset_ratio):
                    j -= 1
                ratio = math.exp(y[i] - ref[i])
                out.append(_finding("explosion", "error", steps[j], steps[i],
                    "train loss / running minimum of the smoothed train loss", ratio,
                    t.explosion_ratio, f"train loss {v[i]:.4g} at step {steps[i]} is {ratio:.1f}x "
                    f"its running minimum {math.exp(ref[i]):.4g} (threshold x"
                    f"{t.explosion_ratio:g}); the climb starts at step {steps[j]}"))  # fmt: skip
            init = _initial(y, t)
            fall = init - runmin
            need = np.maximum(
                t.reversal_lost_fraction * fall,
                t.reversal_noise_sds * _noise(y, t) / math.sqrt(t.smooth_points),
            )
            climb = (s - runmin >= need) & (idx >= burn)
            back = np.flatnonzero(climb & (fall >= -math.log(1 - t.reversal_progress)))
            if back.size:
                i = int(back[0])
                m = runmin[i]
                j = i
                while j > 0 and s[j - 1] > m + 0.25 * fall[i]:
                    j -= 1
                lost = (s[i] - m) / fall[i]
                out.append(_finding("explosion", "error", steps[j], steps[i],
                    "share of the smoothed train loss's fall (log) lost again", lost,
                    t.reversal_lost_fraction, f"the smoothed train loss fell from "
                    f"{math.exp(init):.4g} to {math.exp(m):.4g}, then climbed back to "
                    f"{math.exp(s[i]):.4g} by step {steps[i]}, losing {lost:.0%} of its progress "
                    f"(threshold {t.reversal_lost_fraction:.0%}): divergence from step "
                    f"{steps[j]}"))  # fmt: skip
    if grad is not None:
        gs, g = grad
        ok = np.isfinite(g)
        gs, g = gs[ok], g[ok]
        earlier: list[float] = []
        for i, x in enumerate(g):
            if len(earlier) >= 5:
                med = earlier[len(earlier) // 2]
                if x > t.grad_explosion_ratio * med:
                    j = i
                    while j > 0 and g[j - 1] > t.grad_onset_ratio * med:
                        j -= 1
                    out.append(_finding("explosion", "error", gs[j], gs[i],
                        "grad norm / median of the earlier grad norms", x / med,
                        t.grad_explosion_ratio, f"grad norm {x:.4g} at step {gs[i]} is "
                        f"{x / med:.3g}x the median {med:.4g} of the earlier steps (threshold "
                        f"x{t.grad_explosion_ratio:g}); it climbs from step {gs[j]}"))  # fmt: skip
                    break
            bisect.insort(earlier, float(x))
    return out


def _plateau(train: Series, t: ConvergenceThresholds) -> list:
    steps, v = train
    y = _log(v)
    n = len(y)
    k0 = max(3, t.smooth_points)
    a = _tail_start(steps, t.window_fraction, t.min_window_points)
    if n < t.min_window_points or a < k0:
        return []
    slope, _, tstat = _fit(steps[a:], y[a:], ar=True)
    decrease = 1 - math.exp(slope * (steps[-1] - steps[a]))
    init, level = _initial(y, t), float(np.median(y[a:]))
    total = 1 - math.exp(level - init)
    falling = decrease >= t.plateau_max_decrease and tstat <= -t.plateau_min_t
    if falling or total >= t.plateau_min_total_decrease:
        return []
    return [_finding("plateau", "warning", steps[a], steps[-1],
        "relative decrease of the train loss over the window (log-linear fit)",
        decrease, t.plateau_max_decrease, f"the train loss fell by {decrease:.1%} over steps "
        f"{steps[a]}-{steps[-1]} (threshold {t.plateau_max_decrease:.0%}) and sits at "
        f"{math.exp(level):.4g}, {1 - total:.0%} of its initial {math.exp(init):.4g} (a fall of "
        f"more than {t.plateau_min_total_decrease:.0%} would count as converged)")]  # fmt: skip


def _oscillation(train: Series, t: ConvergenceThresholds) -> list:
    steps, v = train
    y = _log(v)
    n = len(y)
    if n < t.oscillation_min_points:
        return []
    r = y - _smooth(y, t.oscillation_trend_points)
    sign = np.sign(np.diff(y))
    w = max(t.oscillation_min_points, round(t.oscillation_window_fraction * n))
    starts = sorted(set(range(0, n - w + 1, max(1, w // 2))) | {n - w})
    hits = []
    for a in starts:
        rr = r[a : a + w]
        q1, q3 = np.percentile(rr, [25, 75])
        var = float(q3 - q1) / 1.349
        d = sign[a : a + w - 1]
        d = d[d != 0]
        sc = float(np.mean(d[1:] != d[:-1])) if len(d) > 2 else 0.0
        if var >= t.oscillation_min_variability and sc >= t.oscillation_min_sign_changes:
            hits.append((a, var, sc))
    if not hits:
        return []
    a0, a1 = hits[0][0], hits[-1][0] + w - 1
    _, var, sc = max(hits, key=lambda h: h[1])
    return [_finding("oscillation", "warning", steps[a0], steps[a1],
        "robust sd (IQR / 1.349) of log(train loss) around its moving-average trend", var,
        t.oscillation_min_variability, f"the train loss swings by about {var:.0%} around its "
        f"trend over steps {steps[a0]}-{steps[a1]} (threshold {t.oscillation_min_variability:.0%}"
        f"), with {sc:.0%} of its steps reversing direction (threshold "
        f"{t.oscillation_min_sign_changes:.0%})")]  # fmt: skip


def _train_decrease(train: Series, lo: int, hi: int) -> float | None:
    steps, v = train
    m = (steps >= lo) & (steps <= hi)
    if m.sum() < 3:
        return None
    slope, _, _ = _fit(steps[m], _log(v[m]))
    return 1 - math.exp(slope * (hi - lo))


def _val_divergence(val: Series, train: Series, t: ConvergenceThresholds) -> list:
    vs, vv = val
    y = _log(vv)
    b = int(np.argmin(_smooth(y, t.val_smooth_points)))
    if len(y) - b < t.divergence_min_points:
        return []
    slope, _, tstat = _fit(vs[b:], y[b:])
    rise = math.exp(slope * (vs[-1] - vs[b])) - 1
    if rise < t.divergence_min_rise or tstat < t.divergence_min_t:
        return []
    fall = _train_decrease(train, int(vs[b]), int(vs[-1]))
    if fall is None or fall < t.divergence_min_train_decrease:
        return []
    return [_finding("val_divergence", "error", vs[b], vs[-1],
        "relative rise of the val loss since its minimum (log-linear fit)", rise,
        t.divergence_min_rise, f"the val loss rose by {rise:.0%} from step {vs[b]} to "
        f"{vs[-1]} (threshold {t.divergence_min_rise:.0%}, t = {tstat:.1f}) while the train "
        f"loss fell by {fall:.0%}")]  # fmt: skip


def _overfitting(val: Series, train: Series, t: ConvergenceThresholds) -> list:
    (vs, vv), (ts, tv) = val, train
    c1, first = int(min(vs[-1], ts[-1])), int(max(vs[0], ts[0]))
    c0 = c1 - t.window_fraction * (c1 - first)
    inside = (vs >= first) & (vs <= c1)
    vm = inside & (vs >= c0)
    if vm.sum() < 3 and inside.sum() >= 3:
        c0 = float(vs[inside][-3])
        vm = inside & (vs >= c0)
    tm = (ts >= c0) & (ts <= c1)
    if vm.sum() < 3 or tm.sum() < t.min_window_points:
        return []
    # log gap at the val steps against the train trend there, then a linear fit
    trend = _smooth(_log(tv), t.oscillation_trend_points)
    gap = _log(vv[vm]) - np.interp(vs[vm], ts, trend)
    gsl, gin, gap_t = _fit(vs[vm], gap)
    g0, g1 = math.expm1(gin + gsl * c0), math.expm1(gin + gsl * c1)
    growth = (1 + g1) / (1 + g0)
    tsl, _, _ = _fit(ts[tm], _log(tv[tm]))
    fall = 1 - math.exp(tsl * (c1 - c0))
    noise = _noise(_log(tv[tm]), t) / math.sqrt(tm.sum())
    need = max(math.log(t.overfit_min_gap_growth), t.overfit_noise_sds * noise)
    if g1 < t.overfit_min_gap or math.log(growth) < need:
        return []
    if gap_t < t.overfit_min_t:
        return []
    if fall < t.overfit_min_train_decrease:
        return []
    return [_finding("overfitting", "warning", round(c0), c1,
        "relative generalisation gap (val - train) / train at the end of the window", g1,
        t.overfit_min_gap, f"over steps {round(c0)}-{c1} the train loss fell by {fall:.0%} while "
        f"the gap (val - train) / train grew from {g0:.0%} to {g1:.0%} (thresholds: gap "
        f"{t.overfit_min_gap:.0%}, growth x{t.overfit_min_gap_growth:g})")]  # fmt: skip


def _lr_schedule(lr: Series, train: Series | None, t: ConvergenceThresholds) -> list:
    steps, v = lr
    ok = np.isfinite(v) & (v > 0)
    steps, v = steps[ok], v[ok]
    if len(v) < 3:
        return []
    out, peak, span = [], float(v.max()), int(steps[-1] - steps[0])
    if train is not None and v[0] >= t.lr_start_peak_fraction * peak:
        ts, tv = train
        k = max(3, math.ceil(t.lr_warmup_window_fraction * len(tv)))
        head = tv[:k]
        if np.isfinite(head).all() and head[0] > 0:
            i = int(np.argmax(head))
            ratio = float(head[i] / head[0])
            if ratio >= t.lr_spike_ratio:
                out.append(_finding("lr_schedule", "warning", ts[0], ts[i],
                    "peak / first train loss in the first points, the lr starting at its peak",
                    ratio, t.lr_spike_ratio, f"the lr starts at its peak {v[0]:.3g} (no "
                    f"warm-up) and the train loss jumps {ratio:.1f}x, from {head[0]:.4g} to "
                    f"{head[i]:.4g} by step {ts[i]} (threshold x{t.lr_spike_ratio:g})",
                    RECOMMENDATIONS["lr_schedule"][:1] + ("Reduce the peak learning rate",)))  # fmt: skip
    if span > t.lr_long_run_steps:
        best, a = (0, 0, 0), 0
        for i in range(1, len(v) + 1):
            if i == len(v) or abs(v[i] / v[a] - 1) > t.lr_constant_tolerance:
                best = max(best, (int(steps[i - 1] - steps[a]), a, i - 1))
                a = i
        length, a, b = best
        if length > t.lr_constant_fraction * span:
            out.append(_finding("lr_schedule", "info", steps[a], steps[b],
                "share of the run's steps at a constant lr", length / span,
                t.lr_constant_fraction, f"the lr stays at {v[a]:.3g} for {length} of the "
                f"run's {span} steps ({length / span:.0%}, threshold "
                f"{t.lr_constant_fraction:.0%}): it never decays",
                RECOMMENDATIONS["lr_schedule"][1:2]))  # fmt: skip
    head = np.flatnonzero(steps <= steps[0] + t.lr_warmup_max_fraction * span)
    p = int(head[np.flatnonzero(v[head] >= v[head].max() * (1 - 1e-9))[-1]])
    runmin = np.minimum.accumulate(v[p:])
    ratio = v[p + 1 :] / runmin[:-1]
    up = np.flatnonzero(ratio >= t.lr_late_increase_ratio)
    if up.size:
        i = p + 1 + int(up[0])
        e = i + int(np.argmax(v[i:]))
        low = float(runmin[i - 1 - p])
        out.append(_finding("lr_schedule", "warning", steps[i], steps[e],
            "lr / its running minimum after the warm-up", v[e] / low,
            t.lr_late_increase_ratio, f"the lr rises from {low:.3g} to {v[e]:.3g} "
            f"({v[e] / low:.3g}x, threshold x{t.lr_late_increase_ratio:g}) from step "
            f"{steps[i]}, after the warm-up ended at step {steps[p]}: a broken or "
            "restarting scheduler", RECOMMENDATIONS["lr_schedule"][2:]))  # fmt: skip
    return out


def _early_stopping(val: Series, t: ConvergenceThresholds) -> int | None:
    vs, vv = val
    ok = np.isfinite(vv)
    if ok.sum() < 3:
        return None
    s = _smooth(_log(vv[ok]), t.val_smooth_points)
    b = int(np.argmin(s))
    best = int(vs[ok][b])
    worse = (s[b + 1 :] > s[b] + math.log1p(t.early_stopping_patience)).any()
    return best if worse or (~ok & (vs > best)).any() else None


def _before(s: Series | None, step: float) -> Series | None:
    if s is None:
        return None
    m = (s[0] < step) & np.isfinite(s[1])
    return (s[0][m], s[1][m]) if m.sum() >= 3 else None


def analyze_history(
    *,
    series: Mapping[str, Sequence[tuple[int, float]]],
    thresholds: ConvergenceThresholds = ConvergenceThresholds(),
) -> ConvergenceReport:
    t = thresholds
    got = {name: _series(series, name) for name in ALIASES}
    train, val, lr, grad = got["train_loss"], got["val_loss"], got["lr"], got["grad_norm"]
    findings = _explosion(train, grad, t)
    cut = min((f.start_step for f in findings), default=math.inf)
    train_ok, val_ok = _before(train, cut), _before(val, cut)
    if train_ok is not None:
        findings += _plateau(train_ok, t) + _oscillation(train_ok, t)
        if val_ok is not None:
            div = _val_divergence(val_ok, train_ok, t)
            findings += div or _overfitting(val_ok, train_ok, t)
    if lr is not None:
        findings += _lr_schedule(lr, train, t)
    findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), f.start_step, f.code))
    seen = set().union(*(set(s[0].tolist()) for s in got.values() if s is not None))
    return ConvergenceReport(
        findings=tuple(findings),
        early_stopping_step=_early_stopping(val, t) if val is not None else None,
        steps_seen=len(seen),
    )
