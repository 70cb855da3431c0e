"""Plausibility rules for seven predicted landmarks: ordering, safety ranges, shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from mahtqa.cephalometry.facing import mirror_points, profile_facing
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.cephalometry.measurements import (
    DISTANCE_CODES,
    MEASUREMENT_CODES,
    Measurement,
    Spacing,
    compute_measurements,
    to_physical,
)
from mahtqa.cephalometry.shape_model import ShapeModel

Severity = Literal["info", "warning", "high"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "high")
ORDER_CODES: tuple[str, ...] = (
    "order_n_s",
    "order_a_b",
    "order_b_pog",
    "order_me_lowest",
    "order_gn_between",
)
RANGE_CODES: tuple[str, ...] = tuple(f"range_{c}" for c in MEASUREMENT_CODES)
SHAPE_CODE = "shape_outlier"


@dataclass(frozen=True)
class Finding:
    """One plausibility finding (no patient data in ``message``)."""

    code: str
    severity: Severity
    message: str
    landmarks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {**asdict(self), "landmarks": list(self.landmarks)}


def _default_ranges() -> dict[str, tuple[float, float]]:
    # Widened from the textbook examples so every ISBI annotation is well inside.
    return {
        "SNA": (60.0, 110.0),
        "SNB": (55.0, 105.0),
        "ANB": (-15.0, 15.0),
        "S-N": (40.0, 95.0),
        "N-Me": (70.0, 160.0),
        "Y-axis": (45.0, 95.0),
    }


def _default_severities() -> dict[str, str]:
    codes = (*ORDER_CODES, *RANGE_CODES, "spacing_unknown")
    return {code: "high" for code in codes}


@dataclass
class PlausibilityConfig:
    """All rule parameters; ``from_dict``/``as_dict`` let a settings page drive them."""

    ranges: dict[str, tuple[float, float]] = field(default_factory=_default_ranges)
    severities: dict[str, str] = field(default_factory=_default_severities)
    order_tolerance_mm: float = 1.0  # N-S, A-B, B-Pog
    me_lowest_tolerance_mm: float = 3.0
    gn_tolerance_mm: float = 3.0
    shape_warning_distance: float = 6.0
    shape_high_distance: float = 8.0
    assumed_spacing_mm: float = 0.1  # converts mm tolerances to px when spacing is unknown

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """``ValueError`` on inconsistent values."""
        for code, (lo, hi) in self.ranges.items():
            if code not in MEASUREMENT_CODES:
                raise ValueError(f"unknown measurement in ranges: {code!r}")
            if not lo < hi:
                raise ValueError(f"range for {code} must have min < max, got {lo}..{hi}")
        for code, sev in self.severities.items():
            if code not in _default_severities():
                raise ValueError(f"unknown rule in severities: {code!r}")
            if sev not in SEVERITIES:
                raise ValueError(f"severity for {code} must be one of {SEVERITIES}, got {sev!r}")
        if not 0 < self.shape_warning_distance <= self.shape_high_distance:
            raise ValueError("need 0 < shape_warning_distance <= shape_high_distance")
        tolerances = (self.order_tolerance_mm, self.me_lowest_tolerance_mm, self.gn_tolerance_mm)
        if min(tolerances) < 0 or self.assumed_spacing_mm <= 0:
            raise ValueError("tolerances must be >= 0 and assumed_spacing_mm > 0")

    def severity(self, code: str) -> Severity:
        """Configured severity of a rule (``high`` if not configured)."""
        return self.severities.get(code, "high")  # type: ignore[return-value]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (ranges as [min, max] lists)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ranges"] = {k: [float(lo), float(hi)] for k, (lo, hi) in self.ranges.items()}
        out["severities"] = dict(self.severities)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlausibilityConfig:
        """Build from a (partial) dict; missing keys keep their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown plausibility settings: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "ranges":
                ranges = _default_ranges()
                ranges.update({k: (float(v[0]), float(v[1])) for k, v in value.items()})
                kwargs[key] = ranges
            elif key == "severities":
                kwargs[key] = {**_default_severities(), **{k: str(v) for k, v in value.items()}}
            else:
                kwargs[key] = float(value)
        return cls(**kwargs)


def _ordering(
    p: list[list[float]], unit: str, tol_scale: float, cfg: PlausibilityConfig
) -> list[Finding]:
    """Ordering rules on right-facing physical points (x anterior, y down), as Python
    floats: numpy costs microseconds per operation on single coordinates."""
    s, n, a, b, pog, me, gn = p
    tol = cfg.order_tolerance_mm * tol_scale
    out: list[Finding] = []

    def add(code: str, msg: str, lms: tuple[str, ...]) -> None:
        out.append(Finding(code, cfg.severity(code), msg, lms))

    if s[0] - n[0] > tol or (tol == 0 and n[0] == s[0]):
        add(
            "order_n_s",
            f"N is not anterior to S (N is {s[0] - n[0]:.1f} {unit} behind S).",
            ("S", "N"),
        )
    if a[1] - b[1] > tol:
        add(
            "order_a_b",
            f"A lies {a[1] - b[1]:.1f} {unit} below B; A should be above B.",
            ("A", "B"),
        )
    if b[1] - pog[1] > tol:
        add(
            "order_b_pog",
            f"B lies {b[1] - pog[1]:.1f} {unit} below Pog; B should be above Pog.",
            ("B", "Pog"),
        )
    others = [(name, q) for name, q in zip(ABBREVIATIONS, p, strict=True) if name != "Me"]
    name, lowest = max(others, key=lambda item: item[1][1])  # the first of equals, as argmax
    gap = lowest[1] - me[1]
    if gap > cfg.me_lowest_tolerance_mm * tol_scale:
        add(
            "order_me_lowest",
            f"Me is not the lowest landmark: {name} lies {gap:.1f} {unit} "
            f"below it (tolerance {cfg.me_lowest_tolerance_mm * tol_scale:.1f} {unit}).",
            ("Me", name),
        )
    out.extend(_gn_between(pog, me, gn, unit, tol_scale, cfg))
    return out


def _gn_between(
    pog: list[float],
    me: list[float],
    gn: list[float],
    unit: str,
    tol_scale: float,
    cfg: PlausibilityConfig,
) -> list[Finding]:
    tol = cfg.gn_tolerance_mm * tol_scale
    x_ok = me[0] - tol <= gn[0] <= pog[0] + tol
    y_ok = pog[1] - tol <= gn[1] <= me[1] + tol
    if x_ok and y_ok:
        return []
    msg = (
        f"Gn is not between Pog and Me (tolerance {tol:.1f} {unit}): "
        f"Gn ({gn[0]:.1f}, {gn[1]:.1f}), Pog ({pog[0]:.1f}, {pog[1]:.1f}), "
        f"Me ({me[0]:.1f}, {me[1]:.1f}) {unit}."
    )
    code = "order_gn_between"
    return [Finding(code, cfg.severity(code), msg, ("Gn", "Pog", "Me"))]


def _ranges(ms: dict[str, Measurement], cfg: PlausibilityConfig, spacing: Spacing) -> list[Finding]:
    out = []
    for code, (lo, hi) in cfg.ranges.items():
        if spacing is None and code in DISTANCE_CODES:
            continue
        m = ms[code]
        if lo <= m.value <= hi:
            continue
        rule = f"range_{code}"
        msg = (
            f"{code} is {m.value:.1f} {m.unit}, outside the safety range {lo:g} to {hi:g} {m.unit}."
        )
        out.append(Finding(rule, cfg.severity(rule), msg, _RANGE_LANDMARKS[code]))
    return out


_RANGE_LANDMARKS: dict[str, tuple[str, ...]] = {
    "SNA": ("S", "N", "A"),
    "SNB": ("S", "N", "B"),
    "ANB": ("S", "N", "A", "B"),
    "S-N": ("S", "N"),
    "N-Me": ("N", "Me"),
    "Y-axis": ("S", "N", "Gn"),
}


def _shape(
    p: np.ndarray, model: ShapeModel, cfg: PlausibilityConfig, spacing: Spacing
) -> list[Finding]:
    shape_d = model.shape_distance(p)
    if spacing is None:
        dist, detail = shape_d, "size not assessed: spacing unknown"
    else:
        size_z = model.size_z(p)
        dist = float(np.hypot(shape_d, size_z))
        detail = f"shape term {shape_d:.1f}, size z-score {size_z:+.1f}"
    if dist >= cfg.shape_high_distance:
        sev, limit = "high", cfg.shape_high_distance
    elif dist >= cfg.shape_warning_distance:
        sev, limit = "warning", cfg.shape_warning_distance
    else:
        return []
    msg = (
        f"Landmark configuration is atypical: shape-model distance {dist:.1f} "
        f"(>= {limit:g}; {detail})."
    )
    return [Finding(SHAPE_CODE, sev, msg, ABBREVIATIONS)]  # type: ignore[arg-type]


def check_plausibility(
    points: np.ndarray,
    *,
    spacing_mm: Spacing,
    config: PlausibilityConfig | None = None,
    shape_model: ShapeModel | None = None,
    image_width: float | None = None,
) -> list[Finding]:
    """All findings for one (7, 2) landmark array in pixels (any facing)."""
    cfg = config if config is not None else PlausibilityConfig()
    pts = np.asarray(points, dtype=float)
    ms = compute_measurements(pts, spacing_mm=spacing_mm)  # validates shape and finiteness
    if profile_facing(pts) == "left":
        width = image_width if image_width is not None else float(pts[:, 0].max())
        pts = mirror_points(pts, width)
    findings: list[Finding] = []
    if spacing_mm is None:
        msg = "Pixel spacing is unknown: distances are in pixels and mm range checks are skipped."
        findings.append(Finding("spacing_unknown", cfg.severity("spacing_unknown"), msg, ()))
        phys, unit, tol_scale = pts, "px", 1.0 / cfg.assumed_spacing_mm
    else:
        phys, unit, tol_scale = to_physical(pts, spacing_mm), "mm", 1.0
    findings.extend(_ordering(phys.tolist(), unit, tol_scale, cfg))
    findings.extend(_ranges(ms, cfg, spacing_mm))
    if shape_model is not None:
        findings.extend(_shape(phys, shape_model, cfg, spacing_mm))
    return findings
