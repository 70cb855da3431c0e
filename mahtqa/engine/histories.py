"""Labelled synthetic training histories for the convergence analyzer.

``make_history(kind, seed=...)`` returns ``(series, labels)``: ``series`` maps metric
names to (step, value) pairs as a trainer logs them (irregular steps, different steps
per metric, sometimes shuffled, sometimes the ``loss`` / ``learning_rate`` aliases,
sometimes without val / lr / grad_norm), ``labels`` the codes an analyzer must find.

Kinds: one per defect code, "healthy" and "healthy_noisy" (no defect). Curves are
exponential or power-law decays to a floor with multiplicative log-normal noise
(AR(1)-correlated, heavy-tailed spikes in the noisy kind), and realistic lr schedules
(cosine, step, linear, exponential, one-cycle, inverse-sqrt, each with or without a
warm-up). Every parameter (scale, floor, time constant, noise, onset, amplitude, variant)
is drawn per seed. Numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from mahtqa.engine.convergence import CODES

KINDS = ("healthy", "healthy_noisy", *CODES)
Pairs = list[tuple[int, float]]


class _Gen:
    def __init__(self, kind: str, seed: int, steps: int):
        self.rng = rng = np.random.default_rng([seed, KINDS.index(kind)])
        self.kind = kind
        long_run = kind == "lr_schedule"
        stride = int(rng.choice([5, 10, 20] if long_run else [1, 2, 5, 10, 20]))
        gaps = np.maximum(1, stride + rng.integers(-(stride // 3), stride // 3 + 1, steps))
        s = np.cumsum(gaps) - gaps[0] + int(rng.choice([0, stride]))
        keep = rng.random(steps) > rng.uniform(0, 0.05)
        keep[:3] = True
        self.steps = s[keep]
        self.n = len(self.steps)
        self.t = (self.steps - self.steps[0]) / (self.steps[-1] - self.steps[0])
        self.l0 = math.exp(rng.uniform(math.log(0.05), math.log(20.0)))

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def decay(self, floor: float, tau: float, t: np.ndarray | None = None) -> np.ndarray:
        """Clean loss / l0: 1 at t=0, falling to floor with time constant tau (run = 1)."""
        t = self.t if t is None else t
        if self.rng.random() < 0.3:  # power law with about the same half-life
            shape = (1 + t / (0.3 * tau)) ** -self.u(1.0, 2.0)
        else:
            shape = np.exp(-t / tau)
        return floor + (1 - floor) * shape

    def noise(self, sigma: float, n: int | None = None, rho: float = 0.0) -> np.ndarray:
        n = self.n if n is None else n
        e = self.rng.normal(0, sigma, n)
        for i in range(1, n):  # AR(1) with the same marginal sd
            e[i] = rho * e[i - 1] + math.sqrt(1 - rho**2) * e[i]
        return np.exp(e)

    def healthy_curve(self) -> np.ndarray:
        floor = math.exp(self.u(math.log(0.003), math.log(0.25)))
        return self.decay(floor, self.u(0.04, 0.4))

    def schedule(self, *, constant_ok: bool) -> np.ndarray:
        t, rng = self.t, self.rng
        kinds = ["cosine", "step", "linear", "exp", "onecycle", "invsqrt"]
        kind = str(rng.choice(kinds + (["constant"] if constant_ok else [])))
        peak = math.exp(self.u(math.log(1e-5), math.log(0.1)))
        warm = self.u(0.01, 0.1) if rng.random() < 0.6 else 0.0
        u = np.clip((t - warm) / (1 - warm), 0, 1)
        if kind == "cosine":
            lo = self.u(0, 0.05)
            f = lo + (1 - lo) * 0.5 * (1 + np.cos(np.pi * u))
        elif kind == "step":
            marks = [[0.5, 0.75], [0.3, 0.6, 0.9], [0.4, 0.7], [0.6]][int(rng.integers(4))]
            f = self.u(0.1, 0.5) ** np.searchsorted(marks, u, side="right")
        elif kind == "linear":
            f = 1 - u * self.u(0.9, 1.0)
        elif kind == "exp":
            f = math.exp(self.u(math.log(1e-3), math.log(0.1))) ** u
        elif kind == "onecycle":
            pct = self.u(0.15, 0.3)
            up, down = np.clip(t / pct, 0, 1), np.clip((t - pct) / (1 - pct), 0, 1)
            f = np.where(t < pct, 0.04 + 0.96 * 0.5 * (1 - np.cos(np.pi * up)),
                         1e-4 + (1 - 1e-4) * 0.5 * (1 + np.cos(np.pi * down)))  # fmt: skip
            warm = 0.0
        elif kind == "invsqrt":
            w = max(warm, 0.02)
            f = np.sqrt(w / np.maximum(t, w))
        else:
            f = np.ones_like(t)
        if warm:
            f = np.where(t < warm, 0.01 + 0.99 * t / warm, f)
        return peak * f

    def grad(self, clean: np.ndarray) -> np.ndarray:
        g0 = math.exp(self.u(math.log(0.1), math.log(50.0)))
        return g0 * clean ** self.u(0, 0.5) * self.noise(self.u(0.1, 0.5))

    def val(self, clean: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(int(self.rng.integers(0, every)), self.n, every)
        gap = 1 + self.u(-0.1, 0.4)
        return idx, gap * clean[idx] * self.noise(self.u(0.003, 0.04), len(idx))


def _pairs(steps: np.ndarray, values: np.ndarray) -> Pairs:
    return [(int(s), float(v)) for s, v in zip(steps, values, strict=True)]


def make_history(kind: str, *, seed: int, steps: int = 300) -> tuple[dict[str, Pairs], set[str]]:
    """One labelled history: (series, the codes an analyzer must find)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    g = _Gen(kind, seed, steps)
    rng, t, n = g.rng, g.t, g.n
    span = int(g.steps[-1] - g.steps[0])
    clean = g.healthy_curve()
    sigma = g.u(0.005, 0.05) if kind == "healthy" else g.u(0.005, 0.12)
    rho = g.u(0, 0.6) if rng.random() < 0.5 else 0.0
    mult = np.ones(n)  # extra multiplicative effects on the logged train loss
    lr = g.schedule(constant_ok=span < 900)
    val_clean = None
    want = {"val": rng.random() < 0.85, "lr": rng.random() < 0.85, "grad": rng.random() < 0.7}
    grad_override = None
    if kind == "healthy_noisy":
        sigma = g.u(0.05, 0.18)
        spikes = rng.random(n) < g.u(0, 0.03)
        mult = np.where(spikes, rng.uniform(1.3, 2.0, n), 1.0)
    elif kind == "plateau":
        sigma = g.u(0.005, 0.1)
        clean = g.decay(g.u(0.65, 0.97), g.u(0.01, 0.3))
        clean *= np.exp(g.u(-0.03, 0.02) * t)
    elif kind == "oscillation":
        onset, amp = g.u(0.0, 0.5), g.u(0.4, 0.8)
        env = np.clip((t - onset) / 0.05, 0, 1)
        variant = int(rng.integers(3))
        if variant == 0:  # bouncing: the direction flips most steps
            flips = rng.random(n) < g.u(0.6, 0.9)
            wave = np.cumprod(np.where(flips, -1.0, 1.0))
        elif variant == 1:  # a wave of 2.5-7 points with jittered phase
            phase = np.cumsum(2 * np.pi / g.u(2.5, 7.0) + rng.normal(0, 0.3, n))
            wave = np.sin(phase)
        else:  # square wave of 1-3 points per half period
            half = int(rng.integers(1, 4))
            wave = np.where((np.arange(n) // half) % 2 == 0, 1.0, -1.0)
        mult = np.exp(amp * env * wave)
    elif kind == "explosion":
        onset = g.u(0.3, 0.85)
        clean = g.decay(math.exp(g.u(math.log(0.003), math.log(0.3))), g.u(0.04, onset / 1.5))
        i0 = int(np.searchsorted(t, onset))
        k = np.arange(n) - i0
        after = k >= 0
        variant = int(rng.integers(5))
        grad_boost = np.ones(n)
        if variant == 0:  # exponential blow-up, often ending in NaN/inf
            rate = math.log(10) / g.u(3, 40)
            rise = np.minimum(rate * np.maximum(k, 0), g.u(math.log(1e2), math.log(1e8)))
            mult = np.exp(rise)
            grad_boost = np.exp(rise * 1.5)
            if rng.random() < 0.5:
                mult[(rise >= rise.max() - 1e-9) & after] = rng.choice([np.nan, np.inf])
        elif variant == 1:  # a sudden jump, then chaos
            mult = np.where(after, g.u(10, 1e4) * g.noise(0.5), 1.0)
            grad_boost = np.where(after, g.u(1e3, 1e5), 1.0)
        elif variant == 2:  # straight to NaN
            mult = np.where(after, np.nan, 1.0)
        elif variant == 3:  # bounded loss: back to chance level, the gradient vanishes
            level = g.u(1.0, 1.3) / np.maximum(clean, 1e-9)
            ramp = np.clip((k + 1) / g.u(1, 10), 0, 1)
            mult = np.where(after, level**ramp, 1.0)
            grad_boost = np.where(after, 1e-4, 1.0)
        else:  # the grad norm explodes; the loss only triples
            grad_boost = np.where(after, g.u(2e3, 1e6), 1.0)
            mult = np.where(after, g.u(2, 4), 1.0)
            want["grad"] = True
        grad_override = g.grad(clean) * grad_boost
    elif kind == "val_divergence":
        effect = 0.0
        while effect < 1.25:  # the effect: val ends >= 25 % above its minimum
            clean = g.decay(g.u(0.001, 0.1), g.u(0.15, 0.6))
            onset, rise, p, nu = g.u(0.25, 0.6), g.u(0.25, 1.5), g.u(1, 2), g.u(0, 0.3)
            c0 = float(np.interp(onset, t, clean))
            uu = np.clip((t - onset) / (1 - onset), 0, 1)
            follow = (nu * clean + (1 - nu) * c0) * np.exp(rise * uu**p)
            val_clean = np.where(t <= onset, clean, follow)
            effect = val_clean[-1] / val_clean.min()
        want["val"] = True
    elif kind == "overfitting":
        growth = 0.0
        while growth < 1.3:  # the effect: the gap grows by >= 30 % over the last 30 %
            clean = g.decay(g.u(0.001, 0.05), g.u(0.2, 0.6))
            onset, kappa, drift = g.u(0.25, 0.6), g.u(0, 0.3), g.u(-0.04, 0.04)
            c0 = float(np.interp(onset, t, clean))
            uu = np.clip((t - onset) / (1 - onset), 0, 1)
            follow = (1 - kappa) * c0 + kappa * clean
            val_clean = np.where(t <= onset, clean, follow * np.exp(drift * uu))
            ratio = val_clean / clean
            growth = ratio[-1] / float(np.interp(0.7, t, ratio))
        want["val"] = True
    elif kind == "lr_schedule":
        want["lr"] = True
        variant = int(rng.integers(3))
        if variant == 0:  # no warm-up, starting at the peak: the first steps spike
            lr = _no_warmup(g)
            k = int(rng.integers(1, 5))
            mult[1 : 1 + k] = g.u(5, 40) * np.exp(-np.arange(k) * g.u(0, 0.5))
        elif variant == 1:  # the lr never decays over a long run
            warm = g.u(0.0, 0.1)
            lr = g.u(1e-5, 0.1) * np.where(t < warm, 0.01 + 0.99 * t / max(warm, 1e-9), 1.0)
        else:  # late increase: a reset to the peak, a jump or exponential growth
            onset = g.u(0.35, 0.85)
            after = t >= onset
            before = float(lr[~after][-1])
            form = int(rng.integers(3))
            if form == 0 and before <= lr.max() / 2:  # the scheduler restarts at its peak
                lr = np.where(after, lr.max(), lr)
            elif form == 2:  # the decay's sign flipped: exponential growth from the onset
                lr = np.where(after, before * np.exp(g.u(1, 5) * (t - onset) / (1 - onset)), lr)
            else:  # a jump (a per-epoch scheduler stepped with the wrong epoch)
                lr = np.where(after, lr * g.u(2, 100), lr)
            bump = g.u(0.05, 0.5) * np.exp(-np.maximum(t - onset, 0) / g.u(0.02, 0.1))
            mult = np.where(after, 1 + bump, 1.0)
    loss = g.l0 * clean * mult * g.noise(sigma, rho=rho)
    series: dict[str, Pairs] = {}
    names = {"train": "loss" if rng.random() < 0.2 else "train_loss",
             "lr": "learning_rate" if rng.random() < 0.2 else "lr"}  # fmt: skip
    series[names["train"]] = _pairs(g.steps, loss)
    if want["val"]:
        every = int(rng.choice([3, 5, 10, 15]))
        vc = clean if val_clean is None else val_clean
        idx, val = g.val(vc, every)
        if kind in ("explosion", "lr_schedule"):  # the model itself is worse: val follows
            val = val * mult[idx]
        series["val_loss"] = _pairs(g.steps[idx] + int(rng.integers(0, 2)), g.l0 * val)
    if want["lr"]:
        lr_every = int(rng.choice([1, 1, 2, 5]))
        series[names["lr"]] = _pairs(g.steps[::lr_every], lr[::lr_every])
    if want["grad"]:
        gn = grad_override if grad_override is not None else g.grad(clean)
        series["grad_norm"] = _pairs(g.steps, gn)
    if rng.random() < 0.3:
        for pairs in series.values():
            rng.shuffle(pairs)
    labels = set() if kind.startswith("healthy") else {kind}
    return series, labels


def _no_warmup(g: _Gen) -> np.ndarray:
    lr = g.schedule(constant_ok=False)
    while lr[0] < 0.95 * lr.max():
        lr = g.schedule(constant_ok=False)
    return lr


def labelled_set(n_per_kind: int = 40, seed: int = 0) -> list[tuple[dict, set[str], str]]:
    """n_per_kind histories of every kind: (series, labels, kind)."""
    out = []
    for kind in KINDS:
        for i in range(n_per_kind):
            series, labels = make_history(kind, seed=seed * 100_003 + i)
            out.append((series, labels, kind))
    return out
