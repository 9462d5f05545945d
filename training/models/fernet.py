"""`fernet`: a VGG-style network shaped for 48x48 faces, with per-face standardisation inside.

Why this shape:
- 48x48 input is already small. The reference ResNets' 7x7 stride-2 stem and max-pool
  reduce a face to 12x12 before the first block; here the first two 3x3 convs see all
  48x48 pixels, and each stage (two 3x3 conv + BN + ReLU, then a 2x2 max-pool) halves
  the side: 48 -> 24 -> 12 -> 6 -> 3, global average pool, dropout, one linear layer.
- Plain dense 3x3 convolutions with BatchNorm (folded into the convs at export) are
  what CPU runtimes execute fastest per multiply-accumulate, and int8-quantise well.
- :class:`PerFaceNorm` is the first layer: every face is standardised by its own mean
  and standard deviation. A dim, over-exposed or low-contrast face is then the same
  input as a well-lit one (up to clipping and rounding), which is what makes the model
  hold its accuracy in a dim room. Because it lives in the graph, every consumer of the
  exported ONNX file (our runtime or anybody else's) does the same thing, and the
  contract's global mean/std no longer matter for this model (an affine change of the
  input cancels out).
"""
from __future__ import annotations

import torch
from torch import nn

from fer_edge.labels import NUM_CLASSES

from .edgenet import init_conv_bn

PER_FACE_EPS = 1e-3  # in units of the input; flat faces (std ~ 0) map to zeros, not inf


class PerFaceNorm(nn.Module):
    """``(x - mean(x)) / (std(x) + eps)`` per face, over channels and pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        centred = x - mean
        std = centred.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        return centred / (std + PER_FACE_EPS)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FerNet(nn.Module):
    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        dropout: float = 0.4,
        stem_stride: int = 1,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            layers += _conv_bn(cin, w, stem_stride if i == 0 else 1) + _conv_bn(w, w) + [nn.MaxPool2d(2)]
            cin = w
        self.norm = PerFaceNorm()
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(x)))
