"""Gaussian heatmap targets and sub-pixel decoding (corner-origin coordinates)."""

from __future__ import annotations

import numpy as np
import torch


def gaussian_targets(points: np.ndarray, height: int, width: int, sigma: float) -> np.ndarray:
    """(K, H, W) float32 Gaussians with peak 1 at each (x, y) point (corner origin)."""
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    out = np.empty((len(points), height, width), dtype=np.float32)
    for k, (x, y) in enumerate(points):
        out[k] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return out


def as_heatmap(output: torch.Tensor, config) -> torch.Tensor:
    """Network output -> non-negative heatmap (softmax over space for logit outputs)."""
    if (getattr(config, "extra", None) or {}).get("output") == "logits":
        b, k, h, w = output.shape
        return torch.softmax(output.flatten(2).float(), dim=-1).reshape(b, k, h, w)
    return output


def decode(heatmaps: torch.Tensor, radius: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak plus weighted centroid in a (2r+1)^2 window.

    heatmaps: (B, K, H, W). Returns points (B, K, 2) as (x, y) corner-origin pixel
    coordinates and peak values (B, K).
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, -1)
    peak, idx = flat.max(dim=-1)
    py = torch.div(idx, w, rounding_mode="floor")
    px = idx % w
    offs = torch.arange(-radius, radius + 1, device=heatmaps.device)
    wy = (py[..., None] + offs).clamp(0, h - 1)  # (B, K, R)
    wx = (px[..., None] + offs).clamp(0, w - 1)
    bi = torch.arange(b, device=heatmaps.device)[:, None, None, None]
    ki = torch.arange(k, device=heatmaps.device)[None, :, None, None]
    window = heatmaps[bi, ki, wy[..., :, None], wx[..., None, :]]  # (B, K, R, R)
    weights = window.clamp(min=0)
    total = weights.sum(dim=(-1, -2)).clamp(min=1e-8)
    cy = (weights * wy[..., :, None].float()).sum(dim=(-1, -2)) / total
    cx = (weights * wx[..., None, :].float()).sum(dim=(-1, -2)) / total
    points = torch.stack([cx + 0.5, cy + 0.5], dim=-1)
    return points, peak


def spread(heatmaps: torch.Tensor, points: torch.Tensor, radius: int = 6) -> torch.Tensor:
    """Root-mean-square distance of positive heat around each point (B, K), in pixels."""
    d2 = _distance2(heatmaps, points)
    weights = heatmaps.clamp(min=0) * (d2 <= radius**2)
    total = weights.sum(dim=(-1, -2)).clamp(min=1e-8)
    return torch.sqrt((weights * d2).sum(dim=(-1, -2)) / total)


def far_mass(heatmaps: torch.Tensor, points: torch.Tensor, radius: int = 6) -> torch.Tensor:
    """Share of the positive heat farther than ``radius`` px from each point (B, K): for
    a spatial-softmax network, its own probability that the landmark is elsewhere (a
    second structure competing with the peak)."""
    heat = heatmaps.clamp(min=0)
    total = heat.sum(dim=(-1, -2)).clamp(min=1e-8)
    return (heat * (_distance2(heatmaps, points) > radius**2)).sum(dim=(-1, -2)) / total


def _distance2(heatmaps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) squared distance of each pixel centre from its channel's point."""
    h, w = heatmaps.shape[-2:]
    ys = torch.arange(h, device=heatmaps.device).float()[:, None] + 0.5
    xs = torch.arange(w, device=heatmaps.device).float()[None, :] + 0.5
    dx = xs[None, None] - points[..., 0, None, None]
    dy = ys[None, None] - points[..., 1, None, None]
    return dx**2 + dy**2
