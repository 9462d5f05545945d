"""`vgg13`: torchvision's VGG-13 feature stack on 1-channel 48x48 input.

Five 2x2 pools take 48x48 to 1x1, so the classifier is 512-4096-4096-7 (torchvision's
VGG would average-pool to 7x7 first, which on a 1x1 map just copies it 49 times).
"""
from __future__ import annotations

from torch import nn
from torchvision.models import vgg as tv_vgg

from fer_edge.labels import NUM_CLASSES


def vgg_classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """The VGG-style 4096-4096 head that both `base` and `vgg13` put on their feature stacks."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )


def init_vgg_weights(model: nn.Module) -> None:
    """torchvision's VGG initialisation: these plain (BatchNorm-free) stacks train poorly without it."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class VGG13(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 1, dropout: float = 0.5):
        super().__init__()
        features = tv_vgg.make_layers(tv_vgg.cfgs["B"], batch_norm=False)  # "B" is VGG-13
        first = features[0]
        features[0] = nn.Conv2d(in_channels, first.out_channels, 3, padding=1)
        self.features = features
        self.classifier = vgg_classifier(512, num_classes, dropout)
        init_vgg_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg13(num_classes: int = NUM_CLASSES, in_channels: int = 1) -> VGG13:
    return VGG13(num_classes=num_classes, in_channels=in_channels)
