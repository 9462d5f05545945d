"""`resnet18` / `resnet50`: torchvision's ResNets with a 1-channel 7x7 stride-2 stem.

On 48x48 input the stem and max-pool leave 12x12, and the last stage works at 2x2
before global average pooling; kept as in the reference design for comparability.
"""
from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from fer_edge.labels import NUM_CLASSES


def _resnet(block, layers: list[int], num_classes: int, in_channels: int) -> ResNet:
    model = ResNet(block, layers, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def resnet18(num_classes: int = NUM_CLASSES, in_channels: int = 1) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


def resnet50(num_classes: int = NUM_CLASSES, in_channels: int = 1) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)
