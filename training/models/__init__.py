"""Model registry: every architecture fer-edge can train, by name.

All models take ``(N, 1, 48, 48)`` float input normalised as ``(pixel - mean) / std`` and
return ``(N, 7)`` logits in :data:`fer_edge.labels.CLASSES` order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from fer_edge.errors import ModelError
from fer_edge.labels import IMAGE_SIZE, NUM_CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., "nn.Module"]
    description: str
    reference: bool  # one of the four architectures of the reference design
    cpu_channels_last: bool = False  # measured faster in channels_last on the CPU (docs/TRAINING.md)


def _base(**kw):
    from .base import BaseCNN

    return BaseCNN(**kw)


def _vgg13(**kw):
    from .vgg import vgg13

    return vgg13(**kw)


def _resnet18(**kw):
    from .resnet import resnet18

    return resnet18(**kw)


def _resnet50(**kw):
    from .resnet import resnet50

    return resnet50(**kw)


def _fernet(widths, stem_stride: int = 1):
    def build(**kw):
        from .fernet import FerNet

        return FerNet(widths=widths, stem_stride=stem_stride, **kw)

    return build


def _edgenet(**kw):
    from .edgenet import EdgeNet

    return EdgeNet(**kw)


_REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("base", _base, "plain 6-conv CNN with a 4096-4096 classifier (~40M params)", True),
        ModelSpec("vgg13", _vgg13, "VGG-13 feature stack and a 4096-4096 classifier", True),
        ModelSpec("resnet18", _resnet18, "ResNet-18 (BasicBlock [2,2,2,2], 7x7 stem)", True),
        ModelSpec("resnet50", _resnet50, "ResNet-50 (Bottleneck [3,4,6,3], 7x7 stem)", True),
        ModelSpec("edgenet", _edgenet, "small residual net for 48x48 faces (~1.6M params, ~35 MMACs)", False, True),
        ModelSpec("fernet_xs", _fernet((32, 64, 128), stem_stride=2), "fernet with a stride-2 stem and 3 stages, per-face norm (~0.29M params, ~21 MMACs): the fast model", False, True),
        ModelSpec("fernet_s", _fernet((24, 48, 96, 192)), "48x48-native VGG-style net, per-face norm (~0.66M params, ~66 MMACs)", False, True),
        ModelSpec("fernet", _fernet((32, 64, 128, 256)), "48x48-native VGG-style net, per-face norm (~1.2M params, ~117 MMACs)", False, True),
        ModelSpec("fernet_m", _fernet((48, 96, 192, 384)), "48x48-native VGG-style net, per-face norm (~2.6M params, ~263 MMACs)", False, True),
        ModelSpec("fernet_l", _fernet((64, 128, 256, 512)), "48x48-native VGG-style net, per-face norm (~4.7M params, ~465 MMACs): GPU teacher", False),
    )
}

REFERENCE_MODELS: tuple[str, ...] = tuple(n for n, s in _REGISTRY.items() if s.reference)


def list_models(reference_only: bool = False) -> list[str]:
    """Registered model names, in registration order."""
    return [n for n, s in _REGISTRY.items() if s.reference or not reference_only]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def create_model(name: str, num_classes: int = NUM_CLASSES, in_channels: int = 1) -> "nn.Module":
    """Build a freshly initialised model by registry name."""
    return get_spec(name).builder(num_classes=num_classes, in_channels=in_channels)


def count_parameters(model: "nn.Module") -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: "nn.Module", in_channels: int = 1, size: int = IMAGE_SIZE) -> int:
    """Multiply-accumulates of one forward pass on one face, from conv and linear layers.

    Norms, activations and pooling are ignored: they are a small fraction of the work
    and not what dominates latency on a CPU.
    """
    import torch
    from torch import nn

    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, in_channels, size, size, device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
