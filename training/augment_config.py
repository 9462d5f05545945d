"""The settings of batch augmentation (:mod:`.augment` runs them), and its named presets.

Torch-free, so ``fer-edge train --help`` reads the presets (their names, what each does) from
here, where they are defined once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class AugmentConfig:
    translate_px: float = 4.0  # random crop with this much zero padding
    flip: bool = True
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    erase_p: float = 0.5  # random erasing probability
    erase_area: tuple[float, float] = (0.02, 0.2)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    # Photometric changes, applied in pixel units before normalisation (photometric_batch):
    # the light and the camera of a user's photo, which FER2013's curated faces rarely show.
    photometric_p: float = 0.0  # probability of a gamma / contrast / brightness change
    gamma: tuple[float, float] = (0.6, 1.6)
    contrast: tuple[float, float] = (0.5, 1.3)
    brightness_px: float = 40.0
    blur_p: float = 0.0  # probability of a Gaussian blur with sigma in blur_sigma
    blur_sigma: tuple[float, float] = (0.3, 1.3)
    noise_p: float = 0.0  # probability of Gaussian sensor noise with std (pixels) up to noise_px
    noise_px: float = 8.0
    jpeg_p: float = 0.0  # probability of a JPEG round trip at a quality drawn from jpeg_quality
    jpeg_quality: tuple[float, float] = (25.0, 90.0)

    @classmethod
    def preset(cls, name: str) -> "AugmentConfig | None":
        """The preset ``--augment NAME`` (a key of :data:`PRESETS`; ``none``: None)."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown augmentation preset {name!r}; choose one of: {', '.join(PRESETS)}") from None

    def describe(self) -> str:
        """What the preset does, in words made from its values (``--augment``'s help)."""
        parts = [f"crop/pad {self.translate_px:g}px"] + (["flip"] if self.flip else [])
        parts.append(f"rotate {self.rotate_deg:g}deg, scale {self.scale[0]:g}-{self.scale[1]:g}")
        if self.erase_p:
            parts.append("random erasing")
        if self.photometric_p:
            parts.append("gamma/contrast/brightness")
        if self.blur_p:
            parts.append("blur")
        if self.noise_p:
            parts.append("noise")
        if self.jpeg_p:
            parts.append(f"JPEG round trips at quality {self.jpeg_quality[0]:g}-{self.jpeg_quality[1]:g}")
        return ", ".join(parts)


    @property
    def photometric(self) -> bool:
        return self.photometric_p > 0 or self.blur_p > 0 or self.noise_p > 0 or self.jpeg_p > 0


_STRONG = dict(rotate_deg=15.0, scale=(0.85, 1.15), photometric_p=0.5, blur_p=0.25, noise_p=0.25)

#: ``--augment NAME`` -> its settings (None: no augmentation).
PRESETS: dict[str, Optional[AugmentConfig]] = {
    "none": None,
    "light": AugmentConfig(translate_px=3.0, rotate_deg=5.0, scale=(0.95, 1.05), erase_p=0.0),
    "standard": AugmentConfig(),
    "strong": AugmentConfig(**_STRONG),
    # strong, plus the block artefacts of a compressed photo or video frame
    "strong-jpeg": AugmentConfig(**_STRONG, jpeg_p=0.3),
}
#: The preset a run uses when none is named.
DEFAULT_AUGMENT = "standard"


def describe_presets() -> str:
    """Every preset and what it does, the default marked (``--augment``'s help)."""
    return "; ".join(f"{name}: {cfg.describe() if cfg else 'no augmentation'}"
                     f"{' (default)' if name == DEFAULT_AUGMENT else ''}" for name, cfg in PRESETS.items())
