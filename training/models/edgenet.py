"""`edgenet`: a small residual network designed for 48x48 faces and CPU latency.

Why this shape: 48x48 input is already small, so there is no 7x7 stem or early
max-pool throwing away resolution; one 3x3 conv at full resolution, one stride-2
conv to 24x24, then torchvision BasicBlocks that halve the resolution and double the
width (24 -> 48 -> 96 -> 192 channels at 24, 12, 6, 3 pixels). Doubling the width
while halving the side keeps every block at roughly the same cost (~5 MMACs), and
puts most parameters where the maps are 3x3 and cheap. Plain dense 3x3 convs with
BatchNorm (folded away at export) are what CPU runtimes execute fastest per MAC.
About 1.6M parameters and 35 MMACs per face.
"""
from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock

from fer_edge.labels import NUM_CLASSES


def init_conv_bn(model: nn.Module) -> None:
    """He initialisation for convolutions followed by ReLU, BatchNorm as identity.

    torchvision's ResNet recipe; the 48x48-native nets here (edgenet, fernet) use it too.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _down_block(cin: int, cout: int) -> BasicBlock:
    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, stride=2, downsample=down)


class EdgeNet(nn.Module):
    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
        widths: tuple[int, int, int, int] = (24, 48, 96, 192),
        dropout: float = 0.3,
    ):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(_conv_bn(in_channels, w0), _conv_bn(w0, w0, stride=2))  # 48 -> 24
        self.features = nn.Sequential(
            _down_block(w0, w1), BasicBlock(w1, w1),  # 12x12
            _down_block(w1, w2), BasicBlock(w2, w2),  # 6x6
            _down_block(w2, w3), BasicBlock(w3, w3),  # 3x3
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(w3, num_classes)
        )
        init_conv_bn(self)
        # Zero the last BN of each residual branch: every block starts as identity,
        # which makes the first epochs of a from-scratch run noticeably steadier.
        for m in self.features.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.head(self.features(self.stem(x)))
