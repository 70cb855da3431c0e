"""Plain result types of the landmark engine (no torch, no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LandmarkResult:
    abbreviation: str
    name: str
    x: float  # column, in the pixel grid of the input image
    y: float  # row, in the pixel grid of the input image
    confidence: float  # in [0, 1]; higher means the point is more likely within 2 mm


@dataclass(frozen=True, slots=True)
class EnginePrediction:
    landmarks: list[LandmarkResult]
    ood_score: float  # 0 = like the training radiographs; > 1 = unlike them
    ood_details: dict = field(default_factory=dict)
    model_name: str = ""
    model_version: str = ""
    timings_ms: dict = field(default_factory=dict)
    # v2 engines: P(any landmark > 4 mm), and per landmark P(> 2 mm) / P(> 4 mm) and the
    # gross-error signals; None / empty for engines without an error model (v1).
    case_risk: float | None = None
    risk_details: dict = field(default_factory=dict)

    def points(self) -> list[tuple[float, float]]:
        return [(lm.x, lm.y) for lm in self.landmarks]
