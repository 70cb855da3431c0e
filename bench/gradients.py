"""Overhead of the gradient monitor on real engine training steps, both networks.

    python bench/gradients.py --pairs 12 --every 10

Each engine network at the v2 recipe's size ("small") and batches (coarse: 4 augmented
ISBI images at 240x192; fine: 2 images x one 72x72 crop per landmark), AdamW and the
cosine schedule as in ``train_stage``. The batches are made beforehand, so only the
training step (forward, backward, optimiser step and the monitor) is timed, on one
thread as the engine trains. The two arms alternate in blocks of --every steps on one
model, ABAB... for --pairs pairs, so machine noise hits both: A without the monitor, B
with ``GradientMonitor(every=--every)`` called as ``train_stage`` calls it
(``after_backward`` and ``after_step``); a B block holds exactly one sampled step, and A
and B of a pair train on the same batches.

Figures: median step time per arm; the median over the pairs of B's block time / A's
(end to end, noisy on a shared machine); and the monitor's own cost, its calls timed
inside the B steps, as a share of B's step time (direct, insensitive to the noise).
Asserts that both the direct share and the end-to-end median ratio stay below 5 %.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def bench_network(stage: str, a: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from mahtqa.engine.data import Augmenter, all_case_ids, load_samples
    from mahtqa.engine.gradients import GradientMonitor
    from mahtqa.engine.model import build_model, count_parameters
    from mahtqa.engine.train import (
        RECIPES,
        _cosine_lr,
        coarse_batch,
        coarse_config,
        fine_batch,
        fine_config,
        heatmap_loss,
    )

    torch.manual_seed(0)
    samples = load_samples(a.data, all_case_ids(a.data)[: a.cases])
    recipe = RECIPES["v2"]
    aug = Augmenter(np.random.default_rng(0), **recipe[stage], robust=recipe["robust"])
    make = (lambda: coarse_batch(samples, aug, 4)) if stage == "coarse" else (
        lambda: fine_batch(samples, aug, 2))  # fmt: skip
    batches = [make() for _ in range(a.every)]
    config = (coarse_config if stage == "coarse" else fine_config)("mahtnet", "ce", a.size)
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    total_steps = (2 * a.pairs + 1) * a.every
    x0 = batches[0][0]
    print(f"{stage}/{a.size}: {count_parameters(model)} parameters, batch "
          f"{tuple(x0.shape)}, {len(samples)} cases, {a.pairs} ABAB pairs of {a.every}-step "
          f"blocks, monitor every {a.every}", flush=True)  # fmt: skip
    step = 0

    def block(monitor) -> tuple[list[float], float]:
        """--every steps; (step times, seconds inside the monitor's calls)."""
        nonlocal step
        times, inside = [], 0.0
        for x, y in batches:
            for group in opt.param_groups:
                group["lr"] = _cosine_lr(step, total_steps, 2e-3)
            t0 = time.perf_counter()
            value = heatmap_loss(model(x), y, "ce")
            opt.zero_grad()
            value.backward()
            if monitor:
                m0 = time.perf_counter()
                monitor.after_backward(step)
                inside += time.perf_counter() - m0
            opt.step()
            if monitor:
                m0 = time.perf_counter()
                monitor.after_step(step)
                inside += time.perf_counter() - m0
            value.item()
            times.append(time.perf_counter() - t0)
            step += 1
        return times, inside

    block(None)  # warm-up: allocator, kernels, optimiser state
    monitor = GradientMonitor(model, every=a.every)
    off, on, ratios, inside_total = [], [], [], 0.0
    for _ in range(a.pairs):
        t_off, _ = block(None)
        t_on, inside = block(monitor)
        off += t_off
        on += t_on
        ratios.append(sum(t_on) / sum(t_off))
        inside_total += inside
    assert len(monitor.history) == a.pairs  # one sampled step per B block
    return {
        "stage": stage,
        "off": statistics.median(off),
        "on": statistics.median(on),
        "pair": statistics.median(ratios),
        "direct": inside_total / sum(on),
        "per_call": inside_total / a.pairs,
        "findings": sorted({f.code for f in monitor.findings}),
        "last": monitor.history[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/isbi2015-subset")
    ap.add_argument("--size", default="small")
    ap.add_argument("--networks", default="coarse,fine")
    ap.add_argument("--pairs", type=int, default=12, help="ABAB pairs of blocks")
    ap.add_argument("--every", type=int, default=10, help="monitor period = block length")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", type=int, default=12)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    rows = [bench_network(stage, a) for stage in a.networks.split(",")]
    print(f"\ntorch {torch.__version__}, {a.threads} thread(s), monitor every {a.every}\n")
    print("| network | median step, off (ms) | median step, on (ms) | median pairwise "
          "block ratio on/off | monitor's calls / step time | one sampled step's "
          "monitor calls (ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    ok = True
    for r in rows:
        print(f"| {r['stage']} | {r['off'] * 1e3:.1f} | {r['on'] * 1e3:.1f} | {r['pair']:.3f} | "
              f"{r['direct']:.2%} | {r['per_call'] * 1e3:.1f} |")  # fmt: skip
        ok &= r["direct"] < 0.05 and r["pair"] < 1.05
    for r in rows:
        last = r["last"]
        print(f"{r['stage']}: last sampled step {last['step']}: grad norm "
              f"{last['grad_norm']:.3g}, {len(last['layers'])} layers; findings "
              f"{r['findings']}")  # fmt: skip
    print("target: monitor's share < 5 % and end-to-end ratio < 1.05, each network")
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
