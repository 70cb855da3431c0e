"""Synthetic lateral cephalogram phantoms with known landmarks.

A phantom is a drawing, not anatomy: a dark field, a bright skull vault, a
sella turcica cup, the frontal and nasal bones meeting at a nasion notch, a
maxilla and a mandible whose contours pass through the landmarks. The seven
landmarks (order of ``mahtqa.cephalometry.landmarks``: S, N, A, B, Pog, Me, Gn)
are placed first from seeded cephalometric parameters (SNA about 82 deg, SNB
about 80 deg, S-N about 70 mm) and the bones are drawn through them, so every
point sits on visible structure. Deterministic for a seed; numpy and cv2 only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Facing = Literal["right", "left"]
SPACING_MM: tuple[float, float] = (0.3, 0.3023)  # (row, column) mm per pixel
_DEFAULT_SHAPE = (800, 640)
_SHIFT = 4  # cv2 sub-pixel bits
_POINT_ORDER = ("S", "N", "A", "B", "Pog", "Me", "Gn")


@dataclass(frozen=True, slots=True)
class Phantom:
    image: np.ndarray  # uint8 (height, width)
    points: np.ndarray  # float64 (7, 2), columns x, y in pixels
    spacing_mm: tuple[float, float] = SPACING_MM  # (row, column)
    seed: int = 0
    facing: Facing = "right"
    sna_deg: float = 0.0  # the angles the points were built from
    snb_deg: float = 0.0


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Landmarks in mm on a right-facing canvas (x anterior, y down)."""

    s: np.ndarray
    n: np.ndarray
    a: np.ndarray
    b: np.ndarray
    pog: np.ndarray
    me: np.ndarray
    gn: np.ndarray
    sna: float
    snb: float


def _ray(origin: np.ndarray, towards: np.ndarray, angle_deg: float, length: float) -> np.ndarray:
    """Point at ``length`` from ``origin`` at ``angle_deg`` below the ray to ``towards``."""
    u = (towards - origin) / np.linalg.norm(towards - origin)
    t = np.deg2rad(-angle_deg)
    rotated = np.array([u[0] * np.cos(t) - u[1] * np.sin(t), u[0] * np.sin(t) + u[1] * np.cos(t)])
    return origin + length * rotated


def _geometry(rng: np.random.Generator) -> _Geometry:
    clip = np.clip
    sn_len = float(clip(70 + rng.normal(0, 3), 62, 78))
    tilt = np.deg2rad(float(clip(6 + rng.normal(0, 2), 2, 10)))
    sna = float(clip(82 + rng.normal(0, 2), 77, 87))
    snb = sna - float(clip(2 + rng.normal(0, 1.2), -1, 5))
    s = np.array([75 + rng.normal(0, 2), 85 + rng.normal(0, 2)])
    n = s + sn_len * np.array([np.cos(tilt), -np.sin(tilt)])
    nb_len = float(clip(95 + rng.normal(0, 3), 88, 102))
    a = _ray(n, s, sna, float(clip(55 + rng.normal(0, 2), 50, 60)))
    b = _ray(n, s, snb, nb_len)
    pog = _ray(n, s, snb + 2.0, nb_len + 15)
    me = _ray(n, s, snb - 5.5, nb_len + 25)
    chord = me - pog
    outward = np.array([-chord[1], chord[0]]) / np.linalg.norm(chord)
    if outward[1] < 0:
        outward = -outward
    gn = (pog + me) / 2 + 2.0 * outward
    return _Geometry(s, n, a, b, pog, me, gn, sna, snb)


class _Canvas:
    """A float32 drawing surface addressed in mm."""

    def __init__(self, height: int, width: int, px_per_mm: tuple[float, float]) -> None:
        self.img = np.zeros((height, width), np.float32)
        self.px_per_mm = px_per_mm  # (x, y)

    def px(self, pts_mm: np.ndarray) -> np.ndarray:
        return np.asarray(pts_mm, float) * np.array(self.px_per_mm)

    def _fixed(self, pts_mm: np.ndarray) -> np.ndarray:
        return np.round(self.px(pts_mm) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def _thick(self, mm: float) -> int:
        return max(1, round(mm * self.px_per_mm[0]))

    def fill(self, pts_mm: np.ndarray, value: float) -> None:
        cv2.fillPoly(self.img, [self._fixed(pts_mm)], float(value), cv2.LINE_8, _SHIFT)

    def line(self, pts_mm: np.ndarray, value: float, mm: float, closed: bool = False) -> None:
        fixed = self._fixed(pts_mm)
        cv2.polylines(self.img, [fixed], closed, float(value), self._thick(mm), cv2.LINE_8, _SHIFT)

    def arc(self, centre_mm: np.ndarray, axes_mm: tuple[float, float], start: float, end: float,
            value: float, mm: float) -> None:  # fmt: skip
        c = tuple(int(v) for v in np.round(self.px(centre_mm) * (1 << _SHIFT)))
        ax = tuple(int(v) for v in np.round(self.px(np.array(axes_mm)) * (1 << _SHIFT)))
        cv2.ellipse(
            self.img, c, ax, 0, start, end, float(value), self._thick(mm), cv2.LINE_8, _SHIFT
        )


def _smooth(points: list[np.ndarray], samples: int = 12) -> np.ndarray:
    """Catmull-Rom curve through ``points`` (passes through every one of them)."""
    pts = [np.asarray(q, float).reshape(2) for q in points]
    p = [pts[0], *pts, pts[-1]]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, samples, endpoint=False):
            out.append(
                0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                       + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
            )  # fmt: skip
    out.append(p[-2])
    return np.array(out)


def _ellipse(centre: np.ndarray, axes: tuple[float, float], n: int = 90) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + axes[0] * np.cos(t), centre[1] + axes[1] * np.sin(t)], axis=1)


def _at(origin: np.ndarray, *offsets: tuple[float, float]) -> np.ndarray:
    """Points at mm offsets from ``origin`` (one row per offset)."""
    return origin + np.array(offsets, float)


def _draw_soft_tissue(cv: _Canvas, g: _Geometry) -> None:
    cv.fill(_ellipse(g.n + np.array([-92.0, -12.0]), (102, 76)), 0.2)
    profile = [*_at(g.n, (-2, -60), (8, -20), (6, 2), (28, 32), (22, 42)),
               *_at(g.a, (16, 2), (19, 18)), *_at(g.b, (14, 0)), *_at(g.pog, (13, 2)),
               *_at(g.me, (4, 11), (-60, 12)), *_at(g.s, (-20, 70), (-60, 0))]  # fmt: skip
    cv.fill(np.array(profile), 0.2)


def _draw_cranium(cv: _Canvas, g: _Geometry) -> None:
    centre = g.n + np.array([-92.0, -12.0])
    cv.fill(_ellipse(centre, (92, 66)), 0.3)
    cv.arc(centre, (93, 67), 180, 360, 0.85, 5.0)  # the vault
    cv.line(_at(g.s, (-95, 8), (-30, 20), (-8, 9)), 0.6, 4.0)  # posterior cranial base
    cv.fill(_at(g.s, (-10, 3), (10, 3), (13, 24), (-12, 24)), 0.55)  # sphenoid body
    fossa = g.s + np.array([0.0, 0.5])
    cv.fill(_ellipse(fossa, (5.5, 5.0)), 0.26)  # the pituitary fossa
    cv.arc(fossa, (6.0, 5.5), 0, 180, 0.9, 1.5)  # sella floor
    cv.line(_at(g.s, (-6, 0.5), (-5, -5)), 0.9, 1.5)  # dorsum sellae
    cv.line(_at(g.s, (6, 0.5), (3.5, -3.5)), 0.9, 1.5)  # anterior clinoid
    planum = np.vstack([_at(g.s, (6, 0.5)), g.s + 0.5 * (g.n - g.s) + np.array([0, 4.0]), g.n])
    cv.line(planum, 0.7, 2.0)
    frontal = np.vstack([_at(g.n, (1, -12), (4, -8)), g.n[None]])
    cv.line(_smooth(list(frontal)), 0.85, 3.0)
    cv.line(_at(g.n, (0, 0), (11, 22)), 0.8, 2.0)  # nasal bones


def _draw_maxilla(cv: _Canvas, g: _Geometry) -> None:
    ans, prosthion = _at(g.a, (10, -6)), _at(g.a, (4.5, 13))
    cv.fill(np.vstack([_at(g.a, (-48, -6)), ans, g.a, prosthion, _at(g.a, (-40, 16))]), 0.55)
    cv.line(_smooth([ans, g.a, prosthion]), 0.85, 1.5)
    cv.line(_at(g.a, (-48, -6), (10, -6)), 0.8, 1.5)  # the palatal plane
    cv.fill(_at(g.a, (-3, 3), (1, 2), (9.5, 25), (6, 26)), 0.8)  # upper incisor


def _draw_mandible(cv: _Canvas, g: _Geometry) -> None:
    infradentale = _at(g.b, (3.5, -11))
    front = _smooth([infradentale, g.b, g.pog, g.gn, g.me])
    gonion = _at(g.s, (-8, 82))
    back = np.vstack([gonion, _at(g.s, (-7, 24), (6, 34), (16, 27)), _at(g.b, (-33, -12))])
    cv.fill(np.vstack([front, back]), 0.55)
    cv.line(front, 0.9, 1.8)
    cv.line(np.vstack([g.me[None], back[:2]]), 0.85, 2.5)  # lower border and ramus
    cv.fill(np.vstack([_at(g.b, (-5, 2), (-1, 0)), _at(g.b, (7, -20), (4, -21))]), 0.8)


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = cv2.GaussianBlur(img, (0, 0), 1.2) + 0.05
    img += rng.normal(0.0, 0.015, img.shape).astype(np.float32)
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def _to_px(g: _Geometry, px_per_mm: tuple[float, float]) -> np.ndarray:
    pts = np.array([g.s, g.n, g.a, g.b, g.pog, g.me, g.gn], float)
    return pts * np.array(px_per_mm)


def make_phantom(
    *, seed: int, height: int = 800, width: int = 640, facing: Facing = "right"
) -> Phantom:
    """A deterministic synthetic cephalogram and its seven landmarks (x, y pixels)."""
    if facing not in ("right", "left"):
        raise ValueError("facing must be 'right' or 'left'")
    if height < 64 or width < 64:
        raise ValueError("a phantom needs at least 64 x 64 pixels")
    rng = np.random.default_rng(seed)
    g = _geometry(rng)
    # Anatomy is drawn in the default field of view; other sizes scale it to fit.
    scale = min(height / _DEFAULT_SHAPE[0], width / _DEFAULT_SHAPE[1])
    px_per_mm = (scale / SPACING_MM[1], scale / SPACING_MM[0])
    cv = _Canvas(height, width, px_per_mm)
    _draw_soft_tissue(cv, g)
    _draw_cranium(cv, g)
    _draw_maxilla(cv, g)
    _draw_mandible(cv, g)
    image = _finish(cv.img, rng)
    points = _to_px(g, px_per_mm)
    if facing == "left":
        image = np.ascontiguousarray(image[:, ::-1])
        points[:, 0] = (width - 1) - points[:, 0]
    return Phantom(image, points, SPACING_MM, seed, facing, g.sna, g.snb)


def phantom_dicom(
    *,
    seed: int,
    height: int = 800,
    width: int = 640,
    facing: Facing = "right",
    transfer_syntax: str = "explicit_le",
    spacing_attribute: str = "PixelSpacing",
    photometric: str = "MONOCHROME2",
) -> tuple[bytes, Phantom]:
    """The phantom as a 12-bit CR Part-10 file with its spacing, and the phantom.

    MONOCHROME1 stores inverted values, so decoding gives back the same picture.
    UIDs and patient ID derive from the arguments: same arguments, same bytes.
    """
    from pydicom.uid import generate_uid

    from mahtqa.imaging.write import write_cr

    phantom = make_phantom(seed=seed, height=height, width=width, facing=facing)
    stored = (phantom.image.astype(np.uint32) * 4095 // 255).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (4095 - stored).astype(np.uint16)
    tag = f"maht-qa-phantom:{seed}:{height}:{width}:{facing}:{transfer_syntax}:{photometric}"
    data = write_cr(
        stored,
        spacing_mm=phantom.spacing_mm,
        spacing_attribute=spacing_attribute,  # type: ignore[arg-type]
        patient_name="PHANTOM^CEPH",
        patient_id=f"PHANTOM-{seed:06d}",
        photometric=photometric,
        sop_instance_uid=generate_uid(entropy_srcs=[tag, "sop"]),
        study_instance_uid=generate_uid(entropy_srcs=[tag, "study"]),
        series_instance_uid=generate_uid(entropy_srcs=[tag, "series"]),
        transfer_syntax=transfer_syntax,  # type: ignore[arg-type]
    )
    return data, phantom
