"""`base`: the reference design's plain CNN for 48x48 faces."""
from __future__ import annotations

from torch import nn

from fer_edge.labels import NUM_CLASSES

from .vgg import init_vgg_weights, vgg_classifier


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]


class BaseCNN(nn.Module):
    """conv(64)-pool, conv(128)-pool, conv(256)x2-pool, conv(512)x2-pool, then 4096-4096-7.

    Four 2x2 pools take 48x48 to 3x3, hence the ``512*3*3`` classifier input.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 1, dropout: float = 0.5):
        super().__init__()
        pool = lambda: nn.MaxPool2d(2, 2)  # noqa: E731
        self.features = nn.Sequential(
            *_conv(in_channels, 64), pool(),
            *_conv(64, 128), pool(),
            *_conv(128, 256), *_conv(256, 256), pool(),
            *_conv(256, 512), *_conv(512, 512), pool(),
        )
        self.classifier = vgg_classifier(512 * 3 * 3, num_classes, dropout)
        init_vgg_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))
