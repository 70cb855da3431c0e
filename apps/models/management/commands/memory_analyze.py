"""python manage.py memory_analyze --config coarse|fine [--size small] --input HxW --batch N
    [--optimizer adamw] [--precision fp32|bf16|fp16] [--device cpu|cuda] [--target-gb G]
    [--measure] [--json]

The MemoryAnalyzer of mahtqa.engine.memory: parameters, gradients, optimizer state,
activations (measured with hooks on a real forward), the peak for other batch sizes,
fits / does not fit, recommendations."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CommandError("--input is HxW, e.g. 240x192") from None
    return h, w


class Command(BaseCommand):
    help = "Predict (and optionally measure) the training memory of an engine network."

    def add_arguments(self, parser):
        parser.add_argument("--config", choices=["coarse", "fine"], default="coarse")
        parser.add_argument("--size", default="small")
        parser.add_argument("--input", default="")
        parser.add_argument("--batch", type=int, required=True)
        parser.add_argument("--optimizer", default="adamw")
        parser.add_argument("--precision", default="fp32")
        parser.add_argument("--device", default="cpu")
        parser.add_argument("--target-gb", type=float, default=None)
        parser.add_argument("--measure", action="store_true")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, **o):
        from mahtqa.engine.memory import analyze_memory

        try:
            report = analyze_memory(
                network=o["config"],
                size=o["size"],
                input_hw=_hw(o["input"]) if o["input"] else None,
                batch_size=o["batch"],
                optimizer=o["optimizer"],
                precision=o["precision"],
                device=o["device"],
                target_bytes=int(o["target_gb"] * 1024**3) if o["target_gb"] else None,
                measure=o["measure"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        body = report.as_dict()
        if o["as_json"]:
            self.stdout.write(json.dumps(body, indent=1, default=str))
        else:
            b = body["breakdown"]
            self.stdout.write(
                f"predicted peak {b['peak_predicted'] / 2**20:.1f} MiB; "
                + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in b.items() if k != "peak_predicted")
            )
