"""MemoryAnalyzer: predicted training peak against the measured peak, both engine networks.

    python bench/memory.py --size small --batches 2,8,32 --malloc

For each network (coarse 240x192 and fine 72x72, the v2 size "small" unless --size),
AdamW, fp32, one thread as the engine trains: ``analyze_memory`` predicts the peak of a
training step from its calibration steps (batch sizes 1, 3, 16, 20, measured with
saved-tensor hooks and the peak meter); then one real step at each --batches size runs
under the peak meter (``measure=True``). Choose batch sizes outside the calibration
points, or the comparison is circular. Asserts |predicted - measured| <= 10 % of measured.

The CPU peak meter is the c10 CPU allocator's own report of every allocation and free,
as ``torch.profiler.profile(profile_memory=True)`` records it: the maximum of the running
sum, model, optimiser state and batch included, i.e. what ``torch.cuda.max_memory_allocated``
reports on CUDA. The bench first checks the meter on a known allocation pattern (peak
exactly 5 MiB). ``--malloc`` adds a cross-check outside torch's allocator: glibc's bytes in use
(``mallinfo2``) in a fresh process running the same step, read after every aten op (so
transients inside an op are missed). It holds more than the meter by a constant (the
torch runtime's own caches: oneDNN primitives, kernels, Python objects) and the batch-
dependent part should agree; the high-water RSS is no use (glibc keeps freed pages).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start/stop lines on stderr

MiB = 2**20


def _malloc_child(network: str, size: str, batch: int) -> None:
    """One training step as ``measure_peak`` runs it, in this fresh process, under a
    dispatch mode that reads glibc's bytes in use (``mallinfo2``: arena + mmapped
    blocks) after every aten op; prints the largest growth over the start in bytes."""
    import ctypes

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from mahtqa.engine import memory as m

    class Info(ctypes.Structure):
        names = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")  # fmt: skip
        _fields_ = [(n, ctypes.c_size_t) for n in names]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    class Sampler(TorchDispatchMode):
        peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Sampler.peak = max(Sampler.peak, in_use())
            return out

    torch.set_num_threads(1)
    spec = m._spec(network, size, None, "adamw", "fp32", "cpu")
    start = in_use()
    with Sampler():
        model = m.build_model(m._config(spec)).train()
        opt = m._optimizer(spec.optimizer, model.parameters())
        m._train_step(spec, model, opt, *m._batch(spec, model, 1))
        m._train_step(spec, model, opt, *m._batch(spec, model, batch))
    print(Sampler.peak - start)


def _malloc_growth(network: str, size: str, batch: int) -> int:
    cmd = [sys.executable, __file__, "--malloc-child", network, size, str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def _meter_check() -> tuple[int, int]:
    import torch

    from mahtqa.engine.memory import _peak_meter

    with _peak_meter(torch.device("cpu")) as peak:
        a = torch.empty(MiB, dtype=torch.uint8)
        b = torch.empty(2 * MiB, dtype=torch.uint8)
        del a
        c = torch.empty(3 * MiB, dtype=torch.uint8)
        del b, c
        d = torch.empty(MiB // 4, dtype=torch.float32)
        del d
    return peak[0], 5 * MiB


def main() -> None:
    if sys.argv[1:2] == ["--malloc-child"]:
        _malloc_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=["small", "base"])
    ap.add_argument("--batches", default="2,8,32")
    ap.add_argument("--networks", default="coarse,fine")
    ap.add_argument("--malloc", action="store_true", help="add the glibc malloc cross-check")
    a = ap.parse_args()
    import torch

    from mahtqa.engine.memory import CALIBRATION, analyze_memory

    torch.set_num_threads(1)
    batches = [int(v) for v in a.batches.split(",")]
    calibration = sorted({b for pair in CALIBRATION for b in pair})
    got, want = _meter_check()
    print(f"torch {torch.__version__}, 1 thread, AdamW, fp32, size {a.size}; calibration "
          f"batches {calibration}; meter check: {got} bytes for a known peak of {want}")  # fmt: skip
    ok = got == want
    print("\n| network | batch | params+grads+optimizer MiB | activations (hooks) MiB | "
          "batch MiB | workspace MiB | predicted MiB | measured MiB | predicted/measured |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    worst, measured_at = 0.0, {}
    for network in a.networks.split(","):
        t0 = time.perf_counter()
        for batch in batches:
            r = analyze_memory(network=network, size=a.size, batch_size=batch, measure=True)
            b, measured = r.breakdown, r.measured_peak
            measured_at[network, batch] = measured
            ratio = b.peak_predicted / measured
            worst = max(worst, abs(ratio - 1))
            ok &= abs(b.peak_predicted - measured) <= 0.10 * measured
            static = b.parameters + b.gradients + b.optimizer_state
            print(f"| {network} {r.input_hw[0]}x{r.input_hw[1]} | {batch} | {static / MiB:.2f} | "
                  f"{b.activations / MiB:.2f} | {b.batch / MiB:.2f} | {b.workspace / MiB:.2f} | "
                  f"{b.peak_predicted / MiB:.2f} | {measured / MiB:.2f} | {ratio:.4f} |",
                  flush=True)  # fmt: skip
        print(f"<!-- {network}: {time.perf_counter() - t0:.1f} s with calibration -->")
    if a.malloc:
        print("\nCross-check outside torch's allocator (fresh process, glibc bytes in use "
              "sampled after every aten op):")  # fmt: skip
        print("\n| network | batch | meter MiB | malloc growth MiB | malloc - meter MiB |")
        print("|---|---|---|---|---|")
        for network in a.networks.split(","):
            for batch in batches:
                meter, grown = measured_at[network, batch], _malloc_growth(network, a.size, batch)
                print(f"| {network} | {batch} | {meter / MiB:.1f} | {grown / MiB:.1f} | "
                      f"{(grown - meter) / MiB:+.1f} |", flush=True)  # fmt: skip
    print(f"\nlargest |predicted/measured - 1| = {worst:.2%} (target <= 10 %)")
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
