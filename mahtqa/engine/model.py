"""MAHT-Net and the plain U-Net baseline.

MAHT-Net: a CNN encoder with skip connections, a transformer bottleneck with 2D
sinusoidal positional encoding, and a decoder whose skip connections pass through
attention gates; one heatmap per landmark at the input resolution. The U-Net
baseline has the same encoder/decoder without the transformer and the gates, so
both share one interface: ``model(x) -> heatmaps`` of shape (B, K, H, W).

Sizes come from a plain dict config that is stored in the weights' manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class NetConfig:
    arch: str = "mahtnet"  # "mahtnet" | "unet"
    in_channels: int = 1
    out_channels: int = 7
    channels: tuple[int, ...] = (16, 32, 64, 128, 192)
    transformer_layers: int = 2
    transformer_heads: int = 4
    transformer_ff: int = 384
    dropout: float = 0.1
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NetConfig:
        data = dict(data)
        data["channels"] = tuple(data.get("channels", cls.channels))
        return cls(**data)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018) on a skip connection."""

    def __init__(self, skip_ch: int, gate_ch: int, inter_ch: int):
        super().__init__()
        self.w_skip = nn.Conv2d(skip_ch, inter_ch, 1, bias=False)
        self.w_gate = nn.Conv2d(gate_ch, inter_ch, 1, bias=True)
        self.psi = nn.Conv2d(inter_ch, 1, 1, bias=True)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        g = F.interpolate(
            self.w_gate(gate), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        attn = torch.sigmoid(self.psi(F.relu(self.w_skip(skip) + g)))
        return skip * attn


def positional_encoding_2d(d_model: int, height: int, width: int) -> torch.Tensor:
    """Fixed 2D sine-cosine encoding, shape (height * width, d_model)."""
    if d_model % 4:
        raise ValueError("d_model must be divisible by 4 for 2D positional encoding")
    quarter = d_model // 4
    freq = torch.exp(torch.arange(quarter, dtype=torch.float32) * (-math.log(10000.0) / quarter))
    ys = torch.arange(height, dtype=torch.float32)[:, None] * freq[None, :]
    xs = torch.arange(width, dtype=torch.float32)[:, None] * freq[None, :]
    pe_y = torch.cat([ys.sin(), ys.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    pe_x = torch.cat([xs.sin(), xs.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([pe_y, pe_x], dim=2).reshape(height * width, d_model)


class TransformerBottleneck(nn.Module):
    def __init__(self, channels: int, layers: int, heads: int, ff: int, dropout: float):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=channels,
            nhead=heads,
            dim_feedforward=ff,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(channels)
        self._pe_cache: dict[tuple[int, int], torch.Tensor] = {}

    def _pe(self, h: int, w: int, c: int, device: torch.device) -> torch.Tensor:
        key = (h, w)
        if key not in self._pe_cache:
            self._pe_cache[key] = positional_encoding_2d(c, h, w)
        return self._pe_cache[key].to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2) + self._pe(h, w, c, x.device)
        tokens = self.norm(self.encoder(tokens))
        return x + tokens.transpose(1, 2).reshape(b, c, h, w)


class HeatmapNet(nn.Module):
    """Encoder-decoder heatmap network; MAHT-Net or U-Net depending on config."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        ch = list(config.channels)
        self.hybrid = config.arch == "mahtnet"
        if config.arch not in ("mahtnet", "unet"):
            raise ValueError(f"unknown architecture {config.arch!r}")
        self.down = nn.ModuleList()
        cin = config.in_channels
        for c in ch:
            self.down.append(_conv_block(cin, c))
            cin = c
        self.bottleneck = (
            TransformerBottleneck(
                ch[-1],
                config.transformer_layers,
                config.transformer_heads,
                config.transformer_ff,
                config.dropout,
            )
            if self.hybrid
            else nn.Identity()
        )
        self.dropout = nn.Dropout2d(config.dropout)
        self.up = nn.ModuleList()
        self.gates = nn.ModuleList()
        for i in range(len(ch) - 1, 0, -1):
            skip_ch, deep_ch = ch[i - 1], ch[i]
            self.gates.append(
                AttentionGate(skip_ch, deep_ch, max(8, skip_ch // 2))
                if self.hybrid
                else nn.Identity()
            )
            self.up.append(_conv_block(skip_ch + deep_ch, skip_ch))
        self.head = nn.Conv2d(ch[0], config.out_channels, 1)

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        bottom = self.bottleneck(skips[-1])
        return skips[:-1], bottom

    def decode(self, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        for gate, block, skip in zip(self.gates, self.up, reversed(skips), strict=True):
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            gated = gate(skip, x) if self.hybrid else skip
            x = block(torch.cat([gated, up], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        skips, bottom = self.features(x)
        heatmaps = self.decode(skips, bottom)
        if return_embedding:
            return heatmaps, bottom.mean(dim=(2, 3))
        return heatmaps


def build_model(config: NetConfig | dict) -> HeatmapNet:
    if isinstance(config, dict):
        config = NetConfig.from_dict(config)
    return HeatmapNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
