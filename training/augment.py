"""Batched data augmentation for 48x48 faces, done with tensor ops on the batch's device.

Per-image PIL transforms cost more than the forward pass of a small net on a CPU and
starve a GPU; here one affine warp per batch covers random crop-with-padding
(translation), horizontal flip, small rotation and scale, and random erasing is a
masked fill. All random draws come from a CPU ``torch.Generator`` the caller seeds, so
a run is reproducible and independent of the device the warp runs on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    translate_px: float = 4.0  # random crop with this much zero padding
    flip: bool = True
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    erase_p: float = 0.5  # random erasing probability
    erase_area: tuple[float, float] = (0.02, 0.2)
    erase_ratio: tuple[float, float] = (0.3, 3.3)

    @classmethod
    def preset(cls, name: str) -> "AugmentConfig | None":
        if name == "none":
            return None
        if name == "light":
            return cls(translate_px=3.0, rotate_deg=5.0, scale=(0.95, 1.05), erase_p=0.0)
        if name == "standard":
            return cls()
        raise ValueError(f"unknown augmentation preset {name!r}")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Augment a normalised batch ``(N, C, H, W)``; zero (the mean) fills uncovered pixels."""
    n, _, h, w = x.shape
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, g) * (math.pi / 180.0)
    scale = _uniform(n, cfg.scale[0], cfg.scale[1], g)
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/size.
    tx = _uniform(n, -cfg.translate_px, cfg.translate_px, g) * (2.0 / w)
    ty = _uniform(n, -cfg.translate_px, cfg.translate_px, g) * (2.0 / h)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    ).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.erase_p > 0:
        out = random_erase(out, cfg, g)
    return out


def random_erase(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Zero one random rectangle per selected image (torchvision's RandomErasing, batched)."""
    n, _, h, w = x.shape
    area = _uniform(n, *cfg.erase_area, g) * (h * w)
    log_r = _uniform(n, math.log(cfg.erase_ratio[0]), math.log(cfg.erase_ratio[1]), g)
    ratio = torch.exp(log_r)
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (torch.rand(n, generator=g) * (h - eh + 1)).floor()
    left = (torch.rand(n, generator=g) * (w - ew + 1)).floor()
    apply = torch.rand(n, generator=g) < cfg.erase_p
    params = torch.stack([top, top + eh, left, left + ew, apply.float()], 1).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    t, b, l, r, a = (params[:, i].view(n, 1, 1) for i in range(5))
    mask = (rows >= t) & (rows < b) & (cols >= l) & (cols < r) & (a > 0)
    return x.masked_fill(mask.unsqueeze(1), 0.0)
