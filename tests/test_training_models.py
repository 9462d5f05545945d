"""The model registry: the four reference architectures keep their shapes, edgenet its budget."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck  # noqa: E402

from fer_edge.errors import ModelError  # noqa: E402
from fer_edge.training.models import (  # noqa: E402
    REFERENCE_MODELS,
    count_macs,
    count_parameters,
    create_model,
    list_models,
)


def test_registry_lists_the_reference_models_and_edgenet():
    assert REFERENCE_MODELS == ("base", "vgg13", "resnet18", "resnet50")
    assert list_models(reference_only=True) == list(REFERENCE_MODELS)
    assert "edgenet" in list_models()


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_a_batch_of_faces_to_seven_logits(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 1, 48, 48))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


def test_unknown_model_is_a_model_error():
    with pytest.raises(ModelError, match="unknown model 'resnet19'"):
        create_model("resnet19")


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_base_takes_a_face_to_the_map_its_classifier_reads():
    # What the reference design fixes, not its layer list again: 3x3 convolutions only, pools that
    # take a 48x48 face to the 512x3x3 map the 4096-4096-7 classifier (with dropout) reads, and its
    # parameter count, which any change to a layer changes (and which its checkpoints hold).
    m = create_model("base").eval()
    with torch.no_grad():
        assert m.features(torch.zeros(2, 1, 48, 48)).shape == (2, 512, 3, 3)
    assert {c.kernel_size for c in _convs(m)} == {(3, 3)}
    assert [l.out_features for l in _linears(m)] == [4096, 4096, 7]
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == 2
    assert count_parameters(m) == 40_188_167


def test_vgg13_has_ten_convs_in_five_stages_and_a_4096_classifier():
    m = create_model("vgg13")
    assert [c.out_channels for c in _convs(m)] == [64, 64, 128, 128, 256, 256, 512, 512, 512, 512]
    assert _convs(m)[0].in_channels == 1
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 5
    assert [(l.in_features, l.out_features) for l in _linears(m)] == [(512, 4096), (4096, 4096), (4096, 7)]


@pytest.mark.parametrize("name,block,layers", [("resnet18", BasicBlock, [2, 2, 2, 2]),
                                               ("resnet50", Bottleneck, [3, 4, 6, 3])])
def test_resnets_have_the_reference_blocks_and_stem(name, block, layers):
    m = create_model(name)
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == layers
    assert all(isinstance(b, block) for i in range(1, 5) for b in getattr(m, f"layer{i}"))
    assert (m.conv1.in_channels, m.conv1.kernel_size, m.conv1.stride) == (1, (7, 7), (2, 2))
    assert isinstance(m.maxpool, nn.MaxPool2d)
    assert m.fc.out_features == 7


def test_reference_parameter_counts():
    # torchvision's ImageNet ResNet-18 has 11.69M parameters; 1-channel stem and 7 classes remove
    # 2*64*49 stem weights and 993*512+993 classifier weights.
    assert count_parameters(create_model("resnet18")) == 11_689_512 - 2 * 64 * 49 - 993 * 512 - 993
    assert count_parameters(create_model("resnet50")) == 25_557_032 - 2 * 64 * 49 - 993 * 2048 - 993


def test_edgenet_fits_the_edge_budget():
    m = create_model("edgenet")
    params, macs = count_parameters(m), count_macs(m)
    assert 1_000_000 <= params <= 3_000_000
    assert macs <= 40_000_000
    assert not any(c.kernel_size == (7, 7) for c in _convs(m))
    assert any(isinstance(x, nn.BatchNorm2d) for x in m.modules())


def test_count_macs_of_a_single_conv_and_linear():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 48 * 48, 7))
    assert count_macs(m) == 48 * 48 * 4 * 9 + 4 * 48 * 48 * 7


def test_fernet_xs_starts_at_24x24_and_fits_the_fast_budget():
    # The fast model's latency comes from its stride-2 first conv: no layer runs at 48x48.
    m = create_model("fernet_xs").eval()
    first = _convs(m)[0]
    assert (first.in_channels, first.stride) == (1, (2, 2))
    sides = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1])) for c in _convs(m)]
    with torch.no_grad():
        m(torch.zeros(1, 1, 48, 48))
    for h in hooks:
        h.remove()
    assert sides == [24, 24, 12, 12, 6, 6]
    assert count_macs(m) == 21_400_448
    assert count_parameters(m) < count_parameters(create_model("fernet_s")) / 2


def test_augment_presets_are_defined_once_and_the_help_reads_them():
    from fer_edge.cli import build_parser
    from fer_edge.training.augment_config import DEFAULT_AUGMENT, PRESETS, AugmentConfig
    from fer_edge.training.config import DEFAULT_MODEL, TrainConfig

    assert TrainConfig(data="").augment == DEFAULT_AUGMENT and TrainConfig(data="").model == DEFAULT_MODEL
    assert AugmentConfig.preset("strong-jpeg").jpeg_p > 0 and AugmentConfig.preset("none") is None
    with pytest.raises(ValueError, match="choose one of: none, light, standard, strong, strong-jpeg"):
        AugmentConfig.preset("heavy")
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices and "train" in a.choices)
    aug = next(a for a in sub.choices["train"]._actions if a.dest == "augment")
    assert tuple(aug.choices) == tuple(PRESETS)
    assert "rotate 15deg" in aug.help and "JPEG round trips at quality 25-90" in aug.help
