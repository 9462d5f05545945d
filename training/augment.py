"""Batched data augmentation for 48x48 faces, done with tensor ops on the batch's device.

Per-image PIL transforms cost more than the forward pass of a small net on a CPU and
starve a GPU; here one affine warp per batch covers random crop-with-padding
(translation), horizontal flip, small rotation and scale, and random erasing is a
masked fill. All random draws come from a CPU ``torch.Generator`` the caller seeds, so
a run is reproducible and independent of the device the warp runs on.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .augment_config import AugmentConfig  # noqa: F401  (the settings; torch-free, so --help reads them)


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


def photometric_batch(pixels: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Light and camera changes on a float batch ``(N, C, H, W)`` in 0..255 pixel units.

    Each face independently gets, with the configured probabilities: a gamma / contrast /
    brightness change (clipped to 0..255, so over-exposure really saturates), a Gaussian
    blur, and Gaussian noise. Draws are made for every face whether applied or not, so
    the stream of random numbers does not depend on the data.
    """
    n, c, h, w = pixels.shape
    dev, dt = pixels.device, pixels.dtype

    def col(v: torch.Tensor) -> torch.Tensor:
        return v.to(device=dev, dtype=dt).view(n, 1, 1, 1)

    x = pixels
    if cfg.photometric_p > 0:
        apply = torch.rand(n, generator=g) < cfg.photometric_p
        log_g = _uniform(n, math.log(cfg.gamma[0]), math.log(cfg.gamma[1]), g)
        gamma = torch.where(apply, torch.exp(log_g), torch.ones(n))
        contrast = torch.where(apply, _uniform(n, *cfg.contrast, g), torch.ones(n))
        shift = torch.where(apply, _uniform(n, -cfg.brightness_px, cfg.brightness_px, g), torch.zeros(n))
        x = 255.0 * (x.clamp(0, 255) / 255.0).pow(col(gamma))
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - m) * col(contrast) + m + col(shift)).clamp(0, 255)
    if cfg.blur_p > 0:
        apply = torch.rand(n, generator=g) < cfg.blur_p
        sigma = _uniform(n, *cfg.blur_sigma, g)
        radius = int(math.ceil(2 * cfg.blur_sigma[1]))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k1 = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        delta = (t == 0).float().expand(n, -1)
        k1 = torch.where(apply.view(-1, 1), k1, delta).to(device=dev, dtype=dt)  # (n, k)
        # Separable blur as two grouped convolutions: each face (and channel) its own kernel.
        kx = k1.repeat_interleave(c, 0).view(n * c, 1, 1, -1)
        ky = k1.repeat_interleave(c, 0).view(n * c, 1, -1, 1)
        flat = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
        flat = F.conv2d(F.conv2d(flat, kx, groups=n * c), ky, groups=n * c)
        x = flat.view(n, c, h, w)
    if cfg.noise_p > 0:
        apply = torch.rand(n, generator=g) < cfg.noise_p
        std = torch.where(apply, _uniform(n, 0.0, cfg.noise_px, g), torch.zeros(n))
        noise = torch.randn(n, c, h, w, generator=g) * std.view(n, 1, 1, 1)
        x = (x + noise.to(device=dev, dtype=dt)).clamp(0, 255)
    if cfg.jpeg_p > 0:
        apply = torch.rand(n, generator=g) < cfg.jpeg_p
        quality = _uniform(n, *cfg.jpeg_quality, g).round()
        x = torch.where(col(apply.float()) > 0, jpeg_batch(x, quality.to(dev)), x)
    return x


# JPEG's standard luminance quantisation table (ITU-T T.81, Annex K), at quality 50.
_JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def _dct8() -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix: JPEG's forward transform is D @ block @ D.T."""
    k = torch.arange(8, dtype=torch.float32)
    d = torch.cos((2 * k.view(1, 8) + 1) * k.view(8, 1) * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def jpeg_batch(pixels: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """A grayscale baseline-JPEG round trip of each face at its own ``quality`` (1-100), in tensor ops.

    For one channel, the only lossy steps of baseline JPEG are the quantisation of each 8x8
    block's DCT coefficients and the final rounding to 8 bits (entropy coding is lossless), so
    this is a JPEG encode + decode (libjpeg's quality scaling of the standard table) without
    leaving the batch's device. Faces whose sides are not multiples of 8 are padded by edge
    replication, as encoders do.
    """
    n, c, h, w = pixels.shape
    dev, dt = pixels.device, pixels.dtype
    ph, pw = (-h) % 8, (-w) % 8
    x = F.pad(pixels, (0, pw, 0, ph), mode="replicate") if ph or pw else pixels
    hh, ww = x.shape[2] // 8, x.shape[3] // 8
    q = quality.to(device=dev, dtype=torch.float32).clamp(1, 100)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    table = ((_JPEG_LUMA.to(dev).view(1, 8, 8) * scale.view(n, 1, 1) + 50.0) / 100.0).floor().clamp(1, 255)
    d = _dct8().to(dev)
    blocks = (x.to(torch.float32) - 128.0).view(n, c, hh, 8, ww, 8).permute(0, 1, 2, 4, 3, 5)  # n c hh ww 8 8
    coef = d @ blocks @ d.T
    t = table.view(n, 1, 1, 1, 8, 8)
    rec = d.T @ (torch.round(coef / t) * t) @ d
    out = (rec.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh * 8, ww * 8) + 128.0).round().clamp(0, 255)
    return out[:, :, :h, :w].to(dt)


def mixup_batch(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, lam: float, g: torch.Generator, label_smoothing: float = 0.0,
    paired: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Mixup (Zhang et al. 2018): blend each face with another of the batch by ``lam``.

    Returns the mixed batch, soft targets (label-smoothed one-hots, blended the same
    way) and ``paired`` (per-face rows such as a teacher's logits) blended the same way,
    or None. ``lam`` is drawn by the caller from Beta(alpha, alpha) so that the draw comes
    from a seeded generator; it is folded to >= 0.5 so each face stays mostly itself.
    """
    lam = max(lam, 1.0 - lam)
    perm = torch.randperm(len(x), generator=g).to(x.device)
    # y: class indices, or soft targets (N, num_classes) such as FER+'s vote shares
    target = y.to(x.dtype) if y.dim() == 2 else F.one_hot(y, num_classes).to(x.dtype)
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes

    def mix(t: torch.Tensor) -> torch.Tensor:
        return lam * t + (1.0 - lam) * t[perm]

    return mix(x), mix(target), (mix(paired) if paired is not None else None)
