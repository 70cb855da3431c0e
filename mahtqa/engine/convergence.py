"""Convergence diagnostics of a training history (troubleshooting guide, section 4.1).

``analyze_history(series={"train_loss": [(step, value), ...], ...})`` -> a report whose
findings carry their evidence (steps, statistic, value, threshold). Numpy only. Losses are
read in log space (relative changes); each rule is spelled out by the documented fields of
:class:`ConvergenceThresholds`. Choices: a bounded loss (spatial cross-entropy) cannot rise
10x, so an explosion is also a climb back towards the initial (chance) level; the other loss
checks read only the steps before an explosion; a plateau must sit >= 50 % of the initial
loss (a run that fell by more and flattens has converged); overfitting (gap grows, val flat)
is reported only without val_divergence (val rising: the stronger case).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

CODES = ("plateau", "oscillation", "explosion", "val_divergence", "overfitting", "lr_schedule")
SEVERITIES = ("info", "warning", "error", "critical")
ALIASES = {"train_loss": ("train_loss", "loss"), "val_loss": ("val_loss",),
           "lr": ("lr", "learning_rate"), "grad_norm": ("grad_norm",)}  # fmt: skip
WARMUP = "Use a learning-rate warm-up (e.g. linear over the first 2-10 % of the steps)"
CLIP, LOWER = "Add gradient clipping with max_norm=1.0", "Reduce the learning rate by 2-10x"
REGULARISE = "Add regularisation: weight decay, dropout, stronger augmentation"
# fmt: off
RECOMMENDATIONS = {
    "explosion": ("Stop the run and restart from the last good checkpoint", LOWER, CLIP,
                  "Check the data for corrupt samples (NaN/inf inputs or targets)", WARMUP),
    "plateau": ("Adjust the learning rate (2-5x) or try another optimizer",
                "Check the data pipeline (targets aligned with images)", "Verify the loss"),
    "oscillation": (LOWER, "Increase the batch size or accumulate gradients", CLIP),
    "val_divergence": ("Stop early at the best validation step and keep that checkpoint",
                       REGULARISE, "Check the validation data for leakage or a shift"),
    "overfitting": (REGULARISE, "Use early stopping", "Use more data or a smaller model"),
    "lr_schedule": (WARMUP, "Use a decaying schedule (cosine, step or linear decay)",
                    "Check that the scheduler is stepped once per step and never reset"),
}
# fmt: on


@dataclass(frozen=True)
class ConvergenceThresholds:
    smooth_points: int = 5  # points of the centred moving average of log(loss)
    explosion_ratio: float = 10.0  # loss >= this x running min of the smoothed loss
    explosion_onset_ratio: float = 2.0  # the climb starts above this x that minimum
    explosion_burn_in_fraction: float = 0.05  # first share of the points: minimum only
    explosion_burn_in_points: int = 5  # ... and at least this many points
    grad_explosion_ratio: float = 1e3  # grad norm > this x median of the earlier (>= 5) ones
    grad_onset_ratio: float = 10.0  # the grad climb starts above this x that median
    reversal_progress: float = 0.3  # relative fall of the smoothed loss before reversal counts
    reversal_lost_fraction: float = 0.75  # climb back by this share of the (log) fall ...
    reversal_noise_sds: float = 12.0  # ... and by this many noise sds of the smoothed loss
    window_fraction: float = 0.3  # plateau/overfitting: the last share of the steps
    min_window_points: int = 10  # ... at least this many points
    plateau_max_decrease: float = 0.1  # relative fall of the train loss over the window
    plateau_min_t: float = 4.0  # a fall counts when its slope's t <= -this (AR(1)-corrected)
    plateau_min_total_decrease: float = 0.5  # fell more than this since the start: converged
    oscillation_window_fraction: float = 0.2  # windows of this share of the points
    oscillation_min_points: int = 20  # ... at least this many points
    oscillation_trend_points: int = 11  # points of the moving-average trend of log(loss)
    oscillation_min_variability: float = 0.3  # robust sd (IQR / 1.349) of log(loss) - trend
    oscillation_min_sign_changes: float = 0.25  # share of successive differences flipping sign
    divergence_min_rise: float = 0.1  # rise of the log-linear val fit since its minimum
    divergence_min_t: float = 4.0  # t statistic of that rise
    divergence_min_points: int = 5  # val points from the minimum on
    divergence_min_train_decrease: float = 0.03  # relative fall of the train loss meanwhile
    val_smooth_points: int = 3  # val points of the val smoothing (divergence, early stop)
    overfit_min_gap: float = 0.15  # (val - train) / train at the end of the window
    overfit_min_gap_growth: float = 1.2  # (1 + gap_end) / (1 + gap_start)
    overfit_noise_sds: float = 4.0  # log growth >= this x train noise / sqrt(points) too
    overfit_min_t: float = 3.0  # t statistic of the gap's slope
    overfit_min_train_decrease: float = 0.1  # relative fall of the train loss over the window
    lr_start_peak_fraction: float = 0.9  # first lr >= this x peak: no warm-up
    lr_warmup_window_fraction: float = 0.05  # first share of the train points (>= 3) ...
    lr_spike_ratio: float = 3.0  # ... whose max >= this x the first loss is a start spike
    lr_long_run_steps: int = 1000  # "never decays" only on runs longer than this ...
    lr_constant_fraction: float = 0.8  # ... when the lr is constant for more than this share
    lr_constant_tolerance: float = 0.01  # relative tolerance of "constant"
    lr_warmup_max_fraction: float = 0.3  # the warm-up ends at the last peak in this share
    lr_late_increase_ratio: float = 1.1  # later lr >= this x its running minimum: increase
    early_stopping_patience: float = 0.1  # relative worsening of the smoothed val loss


@dataclass(frozen=True)
class ConvergenceFinding:
    code: str  # one of CODES
    severity: str  # one of SEVERITIES
    start_step: int  # the window of steps the evidence covers
    end_step: int
    statistic: str
    value: float
    threshold: float
    message: str
    recommendations: tuple[str, ...]

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("value", "threshold"):  # JSON: no NaN/inf
            data[k] = data[k] if math.isfinite(data[k]) else None
        data["recommendations"] = list(self.recommendations)
        return data


@dataclass(frozen=True)
class ConvergenceReport:
    findings: tuple[ConvergenceFinding, ...]
    early_stopping_step: int | None
    steps_seen: int  # distinct steps over the understood series

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def as_dict(self) -> dict:
        findings = [f.as_dict() for f in self.findings]
        return {"codes": sorted(self.codes()), "findings": findings, "steps_seen": self.steps_seen,
                "early_stopping_step": self.early_stopping_step}  # fmt: skip


Series = tuple[np.ndarray, np.ndarray]  # steps (int64, increasing), values (float64)


def _finding(code, severity, start, end, stat, value, threshold, detail, recs=None):
    msg = f"Steps {start}-{end}: {detail}; {stat} = {value:.3g} (threshold {threshold:.3g})."
    recs = tuple(recs or RECOMMENDATIONS[code])
    return ConvergenceFinding(code, severity, int(start), int(end), stat, float(value),
                              float(threshold), msg, recs)  # fmt: skip


def _series(series: Mapping[str, Sequence[tuple[int, float]]], name: str) -> Series | None:
    pairs = next((series[k] for k in ALIASES[name] if k in series), None)
    if not pairs:
        return None
    steps = np.array([int(s) for s, _ in pairs], dtype=np.int64)
    values = np.array([math.nan if v is None else float(v) for _, v in pairs])
    steps, values = steps[order := np.argsort(steps, kind="stable")], values[order]
    keep = np.r_[steps[1:] != steps[:-1], True]  # a repeated step: the last value logged
    return steps[keep], values[keep]


def _log(v: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(v, 1e-12))  # losses are expected positive


def _smooth(y: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over w points (shrinking at the edges)."""
    c, i = np.concatenate([[0.0], np.cumsum(y)]), np.arange(len(y))
    lo, hi = np.maximum(0, i - w // 2), np.minimum(len(y), i + w // 2 + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def _fit(x: np.ndarray, y: np.ndarray, ar: bool = False) -> tuple[float, float, float]:
    """Least-squares slope, intercept and the slope's t (ar: its standard error widened
    for lag-1 autocorrelated residuals, as minibatch losses are)."""
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
    return slope, intercept, slope / se if se > 0 else math.copysign(math.inf, slope)


def _noise(y: np.ndarray, t: ConvergenceThresholds) -> float:  # robust sd around the trend
    q1, q3 = np.percentile(y - _smooth(y, t.oscillation_trend_points), [25, 75])
    return float(q3 - q1) / 1.349


def _loss_explosion(steps: np.ndarray, v: np.ndarray, t: ConvergenceThresholds) -> list:
    out, y, h = [], _log(v), t.smooth_points // 2
    n = len(y)
    burn = max(t.explosion_burn_in_points, math.ceil(t.explosion_burn_in_fraction * n), h + 1)
    if n <= burn:
        return []
    s = _smooth(y, t.smooth_points)
    runmin, idx = np.minimum.accumulate(s), np.arange(n)
    ref = np.full(n, np.inf)
    ref[burn:] = runmin[idx[burn:] - h - 1]  # the minimum before the point's own window
    hit = np.flatnonzero(y - ref >= math.log(t.explosion_ratio))
    if hit.size:
        i = j = int(hit[0])
        while j > h + 1 and y[j - 1] >= ref[i] + math.log(t.explosion_onset_ratio):
            j -= 1
        out.append(_finding("explosion", "error", steps[j], steps[i], "train loss / running "
            "minimum of the smoothed train loss", math.exp(y[i] - ref[i]), t.explosion_ratio,
            f"the train loss climbs to {v[i]:.4g} from a minimum of "
            f"{math.exp(ref[i]):.4g}"))  # fmt: skip
    init = float(np.mean(y[:3]))  # the initial loss: geometric mean of the first 3 points
    fall = init - runmin
    need = np.maximum(t.reversal_lost_fraction * fall,
                      t.reversal_noise_sds * _noise(y, t) / math.sqrt(t.smooth_points))  # fmt: skip
    back = (s - runmin >= need) & (idx >= burn) & (fall >= -math.log(1 - t.reversal_progress))
    if back.any():
        i = j = int(np.argmax(back))
        while j > 0 and s[j - 1] > runmin[i] + 0.25 * fall[i]:
            j -= 1
        out.append(_finding("explosion", "error", steps[j], steps[i], "share of the smoothed "
            "loss's fall (log) lost again", (s[i] - runmin[i]) / fall[i], t.reversal_lost_fraction,
            f"the smoothed train loss fell from {math.exp(init):.4g} to {math.exp(runmin[i]):.4g}"
            f", then diverged back to {math.exp(s[i]):.4g}"))  # fmt: skip
    return out


def _explosion(train: Series | None, grad: Series | None, t: ConvergenceThresholds) -> list:
    out, (gs, g) = [], grad if grad is not None else (np.zeros(0), np.zeros(0))
    gs, g, earlier = gs[np.isfinite(g)], g[np.isfinite(g)], []  # AMP makes inf grads routinely
    for i, x in enumerate(g):
        med = earlier[len(earlier) // 2] if len(earlier) >= 5 else 0.0
        med = med if med > 0 else math.inf  # no reference yet
        if x > t.grad_explosion_ratio * med:
            j = i
            while j > 0 and g[j - 1] > t.grad_onset_ratio * med:
                j -= 1
            out.append(_finding("explosion", "error", gs[j], gs[i], "grad norm / median of the "
                "earlier grad norms", x / med, t.grad_explosion_ratio,
                f"the grad norm climbs to {x:.4g} from a median of {med:.4g}"))  # fmt: skip
            break
        bisect.insort(earlier, float(x))
    if train is None:
        return out
    steps, v = train
    if (bad := ~np.isfinite(v)).any():
        i = int(np.argmax(bad))
        out.append(_finding("explosion", "critical", steps[i], steps[i], "non-finite "
            "train-loss values", bad.sum(), 0, f"the train loss is {v[i]} (its first "
            "non-finite value)"))  # fmt: skip
        steps, v = steps[:i], v[:i]
    return out + _loss_explosion(steps, v, t)


def _plateau(train: Series, t: ConvergenceThresholds) -> list:
    steps, v = train
    y = _log(v)
    a = int(np.searchsorted(steps, steps[-1] - t.window_fraction * (steps[-1] - steps[0])))
    a = min(a, len(y) - t.min_window_points)
    if a < max(3, t.smooth_points):
        return []
    slope, _, tstat = _fit(steps[a:], y[a:], ar=True)
    decrease = -math.expm1(slope * (steps[-1] - steps[a]))
    init, level = float(np.mean(y[:3])), float(np.median(y[a:]))
    falling = decrease >= t.plateau_max_decrease and tstat <= -t.plateau_min_t
    if falling or -math.expm1(level - init) >= t.plateau_min_total_decrease:
        return []
    return [_finding("plateau", "warning", steps[a], steps[-1], "relative decrease of the train "
        "loss over the window (log-linear fit)", decrease, t.plateau_max_decrease, f"the train "
        f"loss (t = {tstat:.1f}) sits at {math.exp(level):.4g}, {math.exp(level - init):.0%} of "
        f"its initial {math.exp(init):.4g} (a fall of more than "
        f"{t.plateau_min_total_decrease:.0%} would be convergence)")]  # fmt: skip


def _oscillation(train: Series, t: ConvergenceThresholds) -> list:
    steps, v = train
    y = _log(v)
    n = len(y)
    w = max(t.oscillation_min_points, round(t.oscillation_window_fraction * n))
    r, sign, hits = y - _smooth(y, t.oscillation_trend_points), np.sign(np.diff(y)), []
    for a in sorted(set(range(0, n - w + 1, max(1, w // 2))) | {n - w}) if n >= w else []:
        q1, q3 = np.percentile(r[a : a + w], [25, 75])
        d = sign[a : a + w - 1]
        d = d[d != 0]
        flips = float(np.mean(d[1:] != d[:-1])) if len(d) > 2 else 0.0
        var = float(q3 - q1) / 1.349
        if var >= t.oscillation_min_variability and flips >= t.oscillation_min_sign_changes:
            hits.append((var, flips, a))
    if not hits:
        return []
    (var, flips, _), a0, a1 = max(hits), steps[hits[0][2]], steps[hits[-1][2] + w - 1]
    return [_finding("oscillation", "warning", a0, a1, "robust sd (IQR / 1.349) of log(train "
        "loss) around its moving-average trend", var, t.oscillation_min_variability, f"the "
        f"train loss swings around its trend and {flips:.0%} of its steps reverse direction "
        f"(threshold {t.oscillation_min_sign_changes:.0%})")]  # fmt: skip


def _train_fall(train: Series, lo: float, hi: float) -> float:
    steps, v = train
    m = (steps >= lo) & (steps <= hi)
    return -math.expm1(_fit(steps[m], _log(v[m]))[0] * (hi - lo)) if m.sum() >= 3 else -1.0


def _validation(val: Series, train: Series, t: ConvergenceThresholds) -> list:
    """val_divergence, else overfitting (the weaker case: the gap grows, val flat)."""
    (vs, vv), (ts, tv) = val, train
    y = _log(vv)
    b = int(np.argmin(_smooth(y, t.val_smooth_points)))
    slope, _, tstat = _fit(vs[b:], y[b:]) if len(y) - b >= t.divergence_min_points else (0, 0, 0)
    rise, fall = math.expm1(slope * (vs[-1] - vs[b])), _train_fall(train, vs[b], vs[-1])
    rising = rise >= t.divergence_min_rise and tstat >= t.divergence_min_t
    if rising and fall >= t.divergence_min_train_decrease:
        return [_finding("val_divergence", "error", vs[b], vs[-1], "relative rise of the val "
            "loss since its minimum (log-linear fit)", rise, t.divergence_min_rise, f"the val "
            f"loss rises (t = {tstat:.1f}) while the train loss falls by {fall:.0%}")]  # fmt: skip
    c1, first = int(min(vs[-1], ts[-1])), int(max(vs[0], ts[0]))
    c0 = c1 - t.window_fraction * (c1 - first)
    inside = (vs >= first) & (vs <= c1)
    if (inside & (vs >= c0)).sum() < 3 and inside.sum() >= 3:
        c0 = float(vs[inside][-3])  # sparse validation: its last three points
    vm, tm = inside & (vs >= c0), (ts >= c0) & (ts <= c1)
    if vm.sum() < 3 or tm.sum() < t.min_window_points:
        return []
    trend = _smooth(_log(tv), t.oscillation_trend_points)
    gsl, gin, gap_t = _fit(vs[vm], y[vm] - np.interp(vs[vm], ts, trend))  # log(val / train)
    g0, g1 = math.expm1(gin + gsl * c0), math.expm1(gin + gsl * c1)
    growth, fall = (1 + g1) / (1 + g0), _train_fall(train, c0, c1)
    noise = t.overfit_noise_sds * _noise(_log(tv[tm]), t) / math.sqrt(tm.sum())
    if math.log(growth) < max(math.log(t.overfit_min_gap_growth), noise) or gap_t < t.overfit_min_t:
        return []
    if g1 < t.overfit_min_gap or fall < t.overfit_min_train_decrease:
        return []
    return [_finding("overfitting", "warning", round(c0), c1, "relative generalisation gap "
        "(val - train) / train at the end of the window", g1, t.overfit_min_gap, f"the train "
        f"loss falls by {fall:.0%} while the gap grows {growth:.2f}x from {g0:.0%} (growth "
        f"threshold {t.overfit_min_gap_growth:g}x)")]  # fmt: skip


def _lr_schedule(lr: Series, train: Series | None, t: ConvergenceThresholds) -> list:
    steps, v = lr
    steps, v = steps[ok := np.isfinite(v) & (v > 0)], v[ok]
    if len(v) < 3:
        return []
    out, span, recs = [], int(steps[-1] - steps[0]), RECOMMENDATIONS["lr_schedule"]
    if train is not None and v[0] >= t.lr_start_peak_fraction * v.max():
        ts, tv = train
        head = tv[: max(3, math.ceil(t.lr_warmup_window_fraction * len(tv)))]
        if np.isfinite(head).all() and head[0] > 0 and head.max() / head[0] >= t.lr_spike_ratio:
            i = int(np.argmax(head))
            out.append(_finding("lr_schedule", "warning", ts[0], ts[i], "max / first train loss "
                "in the first points", head[i] / head[0], t.lr_spike_ratio, f"the lr starts at "
                f"its peak {v[0]:.3g} (no warm-up) and the train loss jumps from {head[0]:.4g} "
                f"to {head[i]:.4g}", (recs[0], "Reduce the peak learning rate")))  # fmt: skip
    best, a = (0, 0, 0), 0
    for i in range(1, len(v) + 1):  # the longest stretch of a constant lr
        if i == len(v) or abs(v[i] / v[a] - 1) > t.lr_constant_tolerance:
            best, a = max(best, (int(steps[i - 1] - steps[a]), a, i - 1)), i
    if span > t.lr_long_run_steps and best[0] > t.lr_constant_fraction * span:
        length, a, b = best
        out.append(_finding("lr_schedule", "info", steps[a], steps[b], "share of the run's steps"
            " at a constant lr", length / span, t.lr_constant_fraction, f"the lr stays at "
            f"{v[a]:.3g} for {length} of the run's {span} steps: it never decays",
            recs[1:2]))  # fmt: skip
    head = np.flatnonzero(steps <= steps[0] + t.lr_warmup_max_fraction * span)
    p = int(head[np.flatnonzero(v[head] >= v[head].max() * (1 - 1e-9))[-1]])  # warm-up end
    runmin = np.minimum.accumulate(v[p:])
    if (up := np.flatnonzero(v[p + 1 :] / runmin[:-1] >= t.lr_late_increase_ratio)).size:
        i = p + 1 + int(up[0])
        e, low = i + int(np.argmax(v[i:])), float(runmin[i - 1 - p])
        out.append(_finding("lr_schedule", "warning", steps[i], steps[e], "lr / its running "
            "minimum after the warm-up", v[e] / low, t.lr_late_increase_ratio, f"the lr rises "
            f"from {low:.3g} to {v[e]:.3g} after the warm-up ended at step {steps[p]} (a "
            "broken or restarting scheduler)", recs[2:]))  # fmt: skip
    return out


def _early_stopping(val: Series, t: ConvergenceThresholds) -> int | None:
    (vs, vv), ok = val, np.isfinite(val[1])
    if ok.sum() < 3:
        return None
    s = _smooth(_log(vv[ok]), t.val_smooth_points)
    b = int(np.argmin(s))
    worse = (s[b + 1 :] > s[b] + math.log1p(t.early_stopping_patience)).any()
    return int(vs[ok][b]) if worse or (~ok & (vs > vs[ok][b])).any() else None


def _before(s: Series | None, step: float) -> Series | None:
    m = (s[0] < step) & np.isfinite(s[1]) if s is not None else None
    return (s[0][m], s[1][m]) if m is not None and m.sum() >= 3 else None


def analyze_history(
    *,
    series: Mapping[str, Sequence[tuple[int, float]]],
    thresholds: ConvergenceThresholds = ConvergenceThresholds(),
) -> ConvergenceReport:
    """Diagnose one training history; see the module docstring for the rules."""
    t = thresholds
    got = {name: _series(series, name) for name in ALIASES}
    train, val, lr = got["train_loss"], got["val_loss"], got["lr"]
    findings = _explosion(train, got["grad_norm"], t)
    cut = min((f.start_step for f in findings), default=math.inf)  # read before a blow-up
    train_ok, val_ok = _before(train, cut), _before(val, cut)
    if train_ok is not None:
        findings += _plateau(train_ok, t) + _oscillation(train_ok, t)
        findings += _validation(val_ok, train_ok, t) if val_ok is not None else []
    findings += _lr_schedule(lr, train, t) if lr is not None else []
    findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), f.start_step, f.code))
    seen = set().union(*(set(s[0].tolist()) for s in got.values() if s is not None))
    stop = _early_stopping(val, t) if val is not None else None
    return ConvergenceReport(tuple(findings), early_stopping_step=stop, steps_seen=len(seen))
