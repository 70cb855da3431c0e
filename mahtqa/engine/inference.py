"""Inference API of the landmark engine.

    predictor = LandmarkPredictor.load(Path("mahtqa/engine/bundled/mahtnet-v1.pt"), num_threads=2)
    result = predictor.predict(pixels, spacing_mm=(0.1, 0.1))

Any 2D array of any size and aspect ratio goes in; landmarks come back in the
input's own pixel grid (x = column, y = row, corner origin) with a confidence in
[0, 1] and an out-of-distribution score. The weights file is self-contained (the
networks plus the manifest with calibration and reference statistics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from mahtqa.cephalometry.landmarks import LANDMARKS, N_LANDMARKS
from mahtqa.engine.confidence import ConfidenceModel
from mahtqa.engine.heatmaps import as_heatmap, decode, far_mass, spread
from mahtqa.engine.model import build_model
from mahtqa.engine.ood import OodReference, image_statistics
from mahtqa.engine.preprocess import COARSE_SCALE, Frame, coarse_input, crop_at, preprocess
from mahtqa.engine.types import EnginePrediction, LandmarkResult

CANON_MM = 0.3  # canonical pixels are about 0.3 mm on the training radiographs
TTA_SHIFTS = np.array([(0, 0), (-5, -5), (5, -5), (-5, 5), (5, 5)], dtype=np.float64)
# A manifest's "tta" may name its own shifts and views: each view is a fine crop around
# the final point, rotated and scaled (inside the fine stage's training augmentation),
# whose answer is mapped back; their spread is the ``view_spread_mm`` signal, and with
# views the share of the centre crop's heat beyond 1.8 mm (``far_mass``) is a ninth.
# Without "tta" the engine is what it always was: the five shifts, no views.
FORMAT_VERSION = 1
FINE_CHUNK = 12


class EngineError(Exception):
    """The weights cannot be used (wrong format, missing parts)."""


@dataclass
class Analysis:
    """Everything the engine computed for one image, before confidence and OOD."""

    frame: Frame
    canonical_points: np.ndarray  # (7, 2)
    coarse_points: np.ndarray  # (7, 2) canonical
    features: np.ndarray  # (7, len(FEATURES)) confidence features
    embedding: np.ndarray
    statistics: dict
    timings_ms: dict
    view_spread_mm: np.ndarray | None = None  # (7,) when the manifest asks for views
    far_mass: np.ndarray | None = None  # (7,) likewise


class LandmarkPredictor:
    def __init__(self, *, coarse, fine, manifest: dict, device: str = "cpu"):
        self.device = torch.device(device)
        self.coarse = coarse.to(self.device).eval()
        self.fine = fine.to(self.device).eval()
        self.manifest = manifest
        self.fine_crop = int(manifest.get("fine_crop", 72))
        tta = manifest.get("tta") or {}
        self.shifts = np.asarray(tta.get("shifts", TTA_SHIFTS), dtype=np.float64).reshape(-1, 2)
        self.views = [(float(v["rotate_deg"]), float(v["scale"])) for v in tta.get("views", [])]
        calib = manifest.get("confidence")
        self.confidence_model = ConfidenceModel.from_dict(calib) if calib else None
        ood = manifest.get("ood_reference")
        self.ood_reference = OodReference.from_dict(ood) if ood else None
        shape = manifest.get("shape_model")
        self.shape_model = None
        if shape:
            from mahtqa.cephalometry.shape_model import ShapeModel

            self.shape_model = ShapeModel.from_dict(shape)
        self.error_model, self.pair_stats = None, None
        if manifest.get("error_model") and manifest.get("pair_stats") and self.shape_model:
            from mahtqa.engine.error_model import ErrorModel
            from mahtqa.engine.signals import PairStats

            self.error_model = ErrorModel.from_dict(manifest["error_model"])
            self.pair_stats = PairStats.from_dict(manifest["pair_stats"])

    runtime = "torch"

    @classmethod
    def load(
        cls,
        weights_path: Path,
        *,
        device: str = "cpu",
        num_threads: int | None = None,
        runtime: str = "auto",
    ) -> LandmarkPredictor:
        """``runtime``: "auto" (ONNX Runtime on the CPU when its files are beside the
        weights and it is installed, else torch), "torch", or "onnx" (required)."""
        if num_threads:
            torch.set_num_threads(num_threads)
        try:
            blob = torch.load(Path(weights_path), map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt or foreign file
            raise EngineError(
                f"{Path(weights_path).name}: not a MAHT-QA weights file ({exc.__class__.__name__})"
            ) from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT_VERSION:
            raise EngineError(f"{Path(weights_path).name}: unsupported weights format")
        nets = []
        for part in ("coarse", "fine"):
            net = build_model(blob[part]["config"])
            net.load_state_dict(blob[part]["state"])
            nets.append(net.eval())
        used = "torch"
        if device == "cpu" and runtime in ("auto", "onnx"):
            from mahtqa.engine.runtime import OnnxRuntimeError, ort_available, ort_nets

            found = None
            if ort_available():
                try:
                    found = ort_nets(
                        Path(weights_path), nets[0], nets[1],
                        threads=num_threads or torch.get_num_threads(),
                    )  # fmt: skip
                except OnnxRuntimeError as exc:
                    raise EngineError(str(exc)) from exc
            if found is not None:
                nets, used = list(found), "onnxruntime"
            elif runtime == "onnx":
                raise EngineError(f"{Path(weights_path).name}: no usable ONNX Runtime files")
        predictor = cls(coarse=nets[0], fine=nets[1], manifest=blob["manifest"], device=device)
        predictor.runtime = used
        return predictor

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", "mahtnet"))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "0"))

    @torch.inference_mode()
    def analyse_batch(self, images: list[np.ndarray]) -> list[Analysis]:
        t0 = time.perf_counter()
        prepared = [preprocess(np.asarray(img)) for img in images]
        t1 = time.perf_counter()
        x = torch.from_numpy(np.stack([coarse_input(c) for c, _ in prepared]))[:, None].to(
            self.device
        )
        heat, emb = self.coarse(x, return_embedding=True)
        cpts, cpeak = decode(as_heatmap(heat.float(), self.coarse.config), radius=2)
        coarse_pts = cpts.cpu().numpy().astype(np.float64) / COARSE_SCALE
        t2 = time.perf_counter()
        canonicals = [c for c, _ in prepared]
        pass1 = self._fine(canonicals, coarse_pts, self.shifts[:1])[0]
        final, fpeak, fspread, far = self._fine(
            canonicals, pass1[:, 0], self.shifts, far=bool(self.views)
        )
        points = final.mean(axis=1)  # (B, 7, 2)
        views = self._fine_views(canonicals, points) if self.views else None
        t3 = time.perf_counter()
        out = []
        for i, (canonical, frame) in enumerate(prepared):
            point = points[i]
            dev = np.linalg.norm(final[i] - point[None], axis=2)  # (S, 7)
            features = np.column_stack(
                [
                    np.linalg.norm(point - coarse_pts[i], axis=1) * CANON_MM,
                    np.sqrt((dev**2).mean(axis=0)) * CANON_MM,
                    fpeak[i].mean(axis=0),
                    cpeak[i].cpu().numpy(),
                    fspread[i] * CANON_MM,
                ]
            )
            out.append(
                Analysis(
                    frame=frame,
                    canonical_points=point,
                    coarse_points=coarse_pts[i],
                    features=features,
                    embedding=emb[i].float().cpu().numpy().astype(np.float64),
                    statistics=image_statistics(canonical, frame),
                    timings_ms={},
                    view_spread_mm=None if views is None else _rms(views[i], point) * CANON_MM,
                    far_mass=None if views is None else far[i],
                )
            )
        t4 = time.perf_counter()
        per = 1000 / len(images)
        for a in out:
            a.timings_ms = {
                "preprocess": (t1 - t0) * per,
                "coarse": (t2 - t1) * per,
                "fine": (t3 - t2) * per,
                "statistics": (t4 - t3) * per,
            }
        return out

    def _fine(
        self, canonicals: list[np.ndarray], centers: np.ndarray, shifts: np.ndarray, far=False
    ):
        """Fine stage on crops around ``centers`` (B, 7, 2) for each shift; canonical
        coords. Points, peaks, the first shift's spread and far mass (None without
        ``far``)."""
        size = self.fine_crop
        patches, offsets = [], []
        for b, canonical in enumerate(canonicals):
            for s in shifts:
                for k in range(N_LANDMARKS):
                    patch, off = crop_at(canonical, centers[b, k] + s, size)
                    patches.append(patch)
                    offsets.append(off)
        pts, peak, spr, mass = self._run_fine(patches, far=far)
        shape = (len(canonicals), len(shifts), N_LANDMARKS)
        pts = pts + np.stack(offsets)
        far_first = None if mass is None else mass.reshape(shape)[:, 0]
        return pts.reshape(*shape, 2), peak.reshape(shape), spr.reshape(shape)[:, 0], far_first

    def _fine_views(self, canonicals: list[np.ndarray], centers: np.ndarray) -> np.ndarray:
        """(B, V, 7, 2): the fine stage's answer on a rotated, scaled crop around each of
        ``centers`` (B, 7, 2) per view, mapped back to canonical coordinates."""
        size, half = self.fine_crop, self.fine_crop / 2
        patches, maps = [], []
        for b, canonical in enumerate(canonicals):
            for angle, scale in self.views:
                rad = np.deg2rad(angle)
                m = scale * np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
                for k in range(N_LANDMARKS):
                    c = centers[b, k]
                    # patch pixel u (index) samples canonical index m @ (u + 0.5 - half) + c - 0.5
                    inverse = np.column_stack([m, c + m @ np.full(2, 0.5 - half) - 0.5])
                    patches.append(
                        cv2.warpAffine(
                            canonical,
                            inverse,
                            (size, size),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0.0,
                        )  # fmt: skip
                    )
                    maps.append((c, m))
        pts = self._run_fine(patches)[0]
        back = np.stack([c + m @ (p - half) for p, (c, m) in zip(pts, maps, strict=True)])
        return back.reshape(len(canonicals), len(self.views), N_LANDMARKS, 2)

    def _run_fine(self, patches: list[np.ndarray], far: bool = False):
        """Points (patch coords), peaks, spreads and (with ``far``, else None) far masses
        of each crop's own landmark; the crops come in groups of seven, landmark k at
        position k."""
        x = torch.from_numpy(np.stack(patches).astype(np.float32, copy=False))[:, None]
        x = x.to(self.device)
        # Chunks of a dozen crops run about twice as fast on CPU as one large batch
        # (cache-sized activations); eval-mode results do not depend on the chunking.
        # Only each crop's own landmark is used: its channel is taken before the
        # spatial softmax, which is per channel (the same heat, a seventh of the work).
        k_idx = torch.arange(N_LANDMARKS).repeat(len(patches) // N_LANDMARKS)
        raw = []
        for i in range(0, len(x), FINE_CHUNK):
            out = self.fine(x[i : i + FINE_CHUNK])
            rows = torch.arange(len(out), device=out.device)
            raw.append(out[rows, k_idx[i : i + FINE_CHUNK].to(out.device)])
        own = as_heatmap(torch.cat(raw)[:, None].float(), self.fine.config)
        pts, peak = decode(own, radius=3)
        spr = spread(own, pts, radius=6)
        mass = far_mass(own, pts, radius=6)[:, 0].cpu().numpy() if far else None
        return (
            pts[:, 0].cpu().numpy().astype(np.float64),
            peak[:, 0].cpu().numpy(),
            spr[:, 0].cpu().numpy(),
            mass,
        )

    def shape_distance(self, canonical_points: np.ndarray) -> float | None:
        if self.shape_model is None:
            return None
        from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
        from mahtqa.cephalometry.shape_model import points_to_mm

        # the canonical frame has the training radiographs' geometry and spacing
        return float(self.shape_model.distance(points_to_mm(canonical_points, ISBI_SPACING_MM)))

    def finish(
        self, analysis: Analysis, spacing_mm: tuple[float, float] | None
    ) -> EnginePrediction:
        points = analysis.frame.to_original(analysis.canonical_points)
        case_risk, risk = None, {}
        if self.error_model is not None:
            case_risk, risk = self._risk(analysis)
            conf = 1.0 - np.asarray(risk["p_over_2mm"])
        elif self.confidence_model is not None:
            conf = self.confidence_model.predict(analysis.features, np.arange(N_LANDMARKS))
        else:
            conf = np.full(N_LANDMARKS, np.nan)
        ood_score, details = float("nan"), {}
        if self.ood_reference is not None:
            ood_score, details = self.ood_reference.score(
                statistics=analysis.statistics,
                embedding=analysis.embedding,
                frame=analysis.frame,
                spacing_mm=spacing_mm,
                shape_distance=self.shape_distance(analysis.canonical_points),
            )
        landmarks = [
            LandmarkResult(
                abbreviation=lm.abbreviation,
                name=lm.name,
                x=float(points[k, 0]),
                y=float(points[k, 1]),
                confidence=float(np.clip(conf[k], 0.0, 1.0)) if np.isfinite(conf[k]) else 0.0,
            )
            for k, lm in enumerate(LANDMARKS)
        ]
        return EnginePrediction(
            landmarks=landmarks,
            ood_score=ood_score,
            ood_details=details,
            model_name=self.name,
            model_version=self.version,
            timings_ms={k: round(v, 2) for k, v in analysis.timings_ms.items()},
            case_risk=case_risk,
            risk_details=risk,
        )

    def _risk(self, analysis: Analysis) -> tuple[float, dict]:
        """The error model on the gross-error signals: P(> 2 mm), P(> 4 mm), case risk."""
        from mahtqa.engine.signals import case_signals

        signals = case_signals(
            analysis.features, analysis.canonical_points, self.shape_model.mean_shape,
            self.pair_stats, view_spread_mm=analysis.view_spread_mm,
            far_mass=analysis.far_mass,
        )  # fmt: skip
        p2, p4 = self.error_model.probabilities(signals)
        details = {
            "p_over_2mm": [round(float(v), 4) for v in p2],
            "p_over_4mm": [round(float(v), 4) for v in p4],
            "shape_residual_mm": [round(float(v), 2) for v in signals[:, 5]],
            "pair_z": [round(float(v), 2) for v in signals[:, 6]],
        }
        if analysis.view_spread_mm is not None:
            details["view_spread_mm"] = [round(float(v), 2) for v in signals[:, 7]]
            details["far_mass"] = [round(float(v), 3) for v in signals[:, 8]]
        return float(1 - np.prod(1 - p4)), details

    def predict_batch(
        self,
        images: list[np.ndarray],
        *,
        spacing_mm: list[tuple[float, float] | None] | None = None,
    ) -> list[EnginePrediction]:
        spacings = spacing_mm if spacing_mm is not None else [None] * len(images)
        if len(spacings) != len(images):
            raise ValueError("one spacing per image")
        return [
            self.finish(a, s) for a, s in zip(self.analyse_batch(images), spacings, strict=True)
        ]

    def predict(
        self, image: np.ndarray, *, spacing_mm: tuple[float, float] | None = None
    ) -> EnginePrediction:
        return self.predict_batch([image], spacing_mm=[spacing_mm])[0]


def _rms(views: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(7,) root-mean-square distance of the views' answers (V, 7, 2) from ``point``."""
    return np.sqrt((np.linalg.norm(views - point[None], axis=2) ** 2).mean(axis=0))
