"""A site's systematic landmark offset: where its radiologists place each landmark
relative to where the engine does.

Hospitals differ in how they place some landmarks (a sella centre drawn a little
higher, an A point read a little deeper), and a new device shifts the engine's
points the same way on every image. On the second hospital's 50 development cases
the engine's mean residual per landmark is 0.7-3.0 mm, mostly the same direction on
every case. Such an offset is learned from the site's own reviewed cases (the
engine's points against the reviewers' final ones) and added to the engine's points
for that site only.

The offset is expressed in the face's own frame, taken from the engine's points of
each case: origin S, first axis along S -> N, second axis perpendicular to it and
pointing towards Me, both in units of the S-N length. So it follows head position,
tilt, size and facing (a left-facing profile is the mirror image of a right-facing
one). Per landmark and axis it is the median over the reviewed cases (a case where
the engine failed grossly does not move it), shrunk towards zero by
``n / (n + prior_cases)``: with few cases a site gets part of its offset.

``leave_one_out`` gives, for each reviewed case, its points corrected by the offset
fitted on the other cases: what the site calibration scores its risk threshold on,
so no case is judged by an offset it helped to fit. With a pixel spacing the frame is
built in millimetres (rows and columns may differ), else in pixels. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mahtqa.cephalometry.landmarks import N_LANDMARKS, landmark_index

__all__ = ["PRIOR_CASES", "LandmarkOffset", "face_frame", "framable", "leave_one_out"]

PRIOR_CASES = 5  # pseudo-cases of zero offset (set before any site figure was scored)
_S, _N, _ME = (landmark_index(k) for k in ("S", "N", "Me"))


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit axes ``u`` (S -> N) and ``v`` (perpendicular, towards Me) and the S-N length
    of each case: ``points`` (n, 7, 2) -> (n, 2), (n, 2), (n,). ValueError when S and N
    coincide or Me lies on the S-N line (no frame)."""
    u, v, length, apart, off_line = _axes(_points(points))
    if not apart.all():
        raise ValueError("no face frame: S and N coincide")
    if not off_line.all():
        raise ValueError("no face frame: Me lies on the S-N line")
    return u, v, length


def _axes(p: np.ndarray):
    """The frame of each case, and which cases have S apart from N and Me off S-N."""
    u = p[:, _N] - p[:, _S]
    length = np.hypot(u[:, 0], u[:, 1])
    apart = length > 1e-6
    u = u / np.where(apart, length, 1.0)[:, None]
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    side = np.einsum("ij,ij->i", p[:, _ME] - p[:, _S], v)
    off_line = apart & (np.abs(side) > 1e-6)
    return u, v * np.sign(side)[:, None], length, apart, off_line


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"expected (n, {N_LANDMARKS}, 2) landmark arrays, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("landmark arrays contain non-finite values")
    return p


def _scale(spacing_mm, n: int) -> np.ndarray:
    """(n, 1, 2) factors from pixels (x, y) to mm: a (row_mm, col_mm) pair for every
    case, one pair per case ((n, 2)), or None (pixels)."""
    if spacing_mm is None:
        return np.ones((n, 1, 2))
    sp = np.asarray(spacing_mm, dtype=float)
    if sp.shape == (2,):
        sp = np.broadcast_to(sp, (n, 2))
    if sp.shape != (n, 2) or not np.all(np.isfinite(sp)) or not np.all(sp > 0):
        raise ValueError(f"spacing must be positive (row_mm, col_mm) pairs, got {sp.shape}")
    return sp[:, None, ::-1]  # (x, y) order: columns, rows


def framable(points: np.ndarray, spacing_mm=None) -> np.ndarray:
    """Which cases have a face frame (S apart from N, Me off the S-N line)."""
    p = _points(points)
    return _axes(p * _scale(spacing_mm, len(p)))[4]


def _to_frame(points: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    u, v, length = face_frame(points)
    along = np.einsum("nkj,nj->nk", residuals, u)
    across = np.einsum("nkj,nj->nk", residuals, v)
    return np.stack([along, across], axis=-1) / length[:, None, None]


@dataclass(frozen=True)
class LandmarkOffset:
    """Per landmark (along S-N, towards Me) in S-N lengths, and the cases behind it."""

    offsets: tuple[tuple[float, float], ...]
    n: int
    prior_cases: int = PRIOR_CASES

    @classmethod
    def fit(
        cls,
        *,
        predicted: np.ndarray,
        final: np.ndarray,
        spacing_mm=None,
        prior_cases: int = PRIOR_CASES,
    ) -> LandmarkOffset:
        """From (n, 7, 2) engine points and the reviewers' final points (same pixels);
        ``spacing_mm``: (row_mm, col_mm), one pair per case, or None (pixels)."""
        p, f = _points(predicted), _points(final)
        if p.shape != f.shape:
            raise ValueError("predicted and final need the same shape")
        if prior_cases < 0:
            raise ValueError("prior_cases must be >= 0")
        n = len(p)
        scale = _scale(spacing_mm, n)
        frame = _to_frame(p * scale, (f - p) * scale)
        median = np.median(frame, axis=0) * (n / (n + prior_cases))
        return cls(offsets=tuple(map(tuple, median.tolist())), n=n, prior_cases=prior_cases)

    def apply(self, points: np.ndarray, spacing_mm=None) -> np.ndarray:
        """The corrected points, same shape as ``points`` ((7, 2) or (n, 7, 2))."""
        raw = np.asarray(points, dtype=float)
        p = _points(raw)
        scale = _scale(spacing_mm, len(p))
        mm = p * scale
        u, v, length = face_frame(mm)
        off = np.asarray(self.offsets, dtype=float)  # (7, 2)
        shift = off[None, :, :1] * u[:, None, :] + off[None, :, 1:] * v[:, None, :]
        out = (mm + shift * length[:, None, None]) / scale
        return out[0] if raw.ndim == 2 else out

    def to_dict(self) -> dict:
        return {
            "offsets": [[round(a, 9), round(b, 9)] for a, b in self.offsets],
            "n": self.n,
            "prior_cases": self.prior_cases,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LandmarkOffset:
        """ValueError for anything but seven finite pairs, a case count and a prior."""
        try:
            offsets = np.asarray(data["offsets"], dtype=float)
            n, prior = int(data["n"]), int(data["prior_cases"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a landmark offset: {exc!r}") from exc
        if offsets.shape != (N_LANDMARKS, 2):
            raise ValueError(f"a landmark offset has {N_LANDMARKS} rows of 2, not {offsets.shape}")
        if not np.all(np.isfinite(offsets)) or n < 1 or prior < 0:
            raise ValueError("a landmark offset needs finite values, n >= 1 and a prior >= 0")
        return cls(offsets=tuple(map(tuple, offsets.tolist())), n=n, prior_cases=prior)


def leave_one_out(
    *,
    predicted: np.ndarray,
    final: np.ndarray,
    spacing_mm=None,
    prior_cases: int = PRIOR_CASES,
) -> np.ndarray:
    """Each case's points corrected by the offset fitted on all the other cases."""
    p, f = _points(predicted), _points(final)
    if len(p) < 2:
        raise ValueError("leave-one-out needs at least two cases")
    sp = np.broadcast_to(_scale(spacing_mm, len(p))[:, 0, ::-1], (len(p), 2))  # (row, col)
    keep = np.ones(len(p), dtype=bool)
    out = np.empty_like(p)
    for i in range(len(p)):
        keep[i] = False
        offset = LandmarkOffset.fit(
            predicted=p[keep], final=f[keep], spacing_mm=sp[keep], prior_cases=prior_cases
        )
        out[i] = offset.apply(p[i], spacing_mm=sp[i])
        keep[i] = True
    return out
