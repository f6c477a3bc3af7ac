"""Every registered model: output shapes, gradients, input-size errors (parametrised over the
registry, so a model is tested the moment it is registered)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import medmtl
from medmtl.commands import models as models_command
from medmtl.models import MTLOutput, create_model, list_models
from medmtl.models.blocks.resnet import ResNetEncoder

MODELS = list_models()
TARGETS = 3  # regression targets given to every model; those without a regression task ignore it


def _model(name: str, **sizes) -> torch.nn.Module:
    return create_model(name, num_targets=TARGETS, **sizes)


def _check_tasks(model, out: MTLOutput, batch: int, size: int, classes=3, seg_classes=2) -> None:
    """Each output the model's tasks name has its shape and finite values; the others are None."""
    assert isinstance(out, MTLOutput)
    assert out.cls_logits.shape == (batch, classes) and torch.isfinite(out.cls_logits).all()
    if "seg" in model.tasks:
        assert out.seg_logits.shape == (batch, seg_classes, size, size)
        assert torch.isfinite(out.seg_logits).all()
    else:
        assert out.seg_logits is None
    if "reg" in model.tasks:
        assert out.reg.shape == (batch, TARGETS) and torch.isfinite(out.reg).all()
    else:
        assert out.reg is None


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_holds_the_table4_models() -> None:
    expected = {
        "resformer_sequential",
        "resformer_parallel",
        "he2020",
        "gende2022",
        "hervella2022",
        "tang2023",
        "resunet",
    }
    assert expected <= set(MODELS)


@pytest.mark.parametrize("size", [64, 128, 224])
@pytest.mark.parametrize("name", MODELS)
def test_output_shapes(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = _model(name, num_classes=3, num_seg_classes=2, img_size=size, width=8).eval()
    with torch.no_grad():
        _check_tasks(model, model(torch.randn(1, 3, size, size)), 1, size)


@pytest.mark.parametrize("name", MODELS)
def test_tiny_profile_size(name: str) -> None:
    model = _model(name, img_size=32, width=4).eval()  # conf/profile/tiny.yaml
    with torch.no_grad():
        _check_tasks(model, model(torch.randn(2, 3, 32, 32)), 2, 32)


@pytest.mark.parametrize("name", MODELS)
def test_class_counts_follow_arguments(name: str) -> None:
    model = _model(name, num_classes=5, num_seg_classes=4, img_size=64, width=8).eval()
    with torch.no_grad():
        _check_tasks(model, model(torch.randn(2, 3, 64, 64)), 2, 64, classes=5, seg_classes=4)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = _model(name, img_size=64, width=8).train()
    out = model(torch.randn(2, 3, 64, 64))
    # random weights, so no parameter's gradient cancels by symmetry (e.g. a softmax-invariant sum)
    loss = sum((o * torch.randn_like(o)).sum() for o in out if o is not None)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_side_not_divisible_raises(name: str) -> None:
    model = _model(name, img_size=64, width=8).eval()
    side = 64 + model.side_multiple // 2  # 72 for the models whose strides multiply to 16
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 3, side, side))
    with pytest.raises(ValueError, match="divisible"):
        _model(name, img_size=side, width=8)


@pytest.mark.parametrize(
    "name", ["resformer_sequential", "resformer_parallel", "tang2023", "mtinet"]
)
def test_resolution_bound_models_reject_other_sizes(name: str) -> None:
    model = _model(name, img_size=64, width=8).eval()
    with pytest.raises(ValueError, match="img_size=64"):
        model(torch.randn(1, 3, 128, 128))


def test_non_image_input_raises() -> None:
    model = create_model("he2020", img_size=64, width=8)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_is_an_error(name: str) -> None:
    with pytest.raises(TypeError):
        _model(name, img_size=64, width=8, no_such_option=1)


def test_rgb_models_refuse_other_channels_and_regressing_ones_need_targets() -> None:
    with pytest.raises(ValueError, match="takes RGB images"):
        create_model("he2020", img_size=64, width=8, in_channels=6)
    with pytest.raises(ValueError, match="num_targets"):
        create_model("res_mtnet", img_size=64, width=8)
    model = _model("shared_encoder_seg", img_size=64, width=8, in_channels=6).eval()
    with torch.no_grad():
        _check_tasks(model, model(torch.randn(2, 6, 64, 64)), 2, 64)


def test_dfe_switch_removes_only_the_dfe_modules() -> None:
    full = create_model("resformer_parallel", img_size=64, width=8)
    ablated = create_model("resformer_parallel", img_size=64, width=8, use_dfe=False)
    dfe = {n for n, _ in full.named_parameters() if ".enhance." in n}
    assert dfe and {n for n, _ in full.named_parameters()} - dfe == {
        n for n, _ in ablated.named_parameters()
    }


def test_sequential_and_parallel_differ_only_in_wiring() -> None:
    torch.manual_seed(0)
    seq = create_model("resformer_sequential", img_size=64, width=8).eval()
    par = create_model("resformer_parallel", img_size=64, width=8).eval()
    par.load_state_dict(seq.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(seq(x).seg_logits, par(x).seg_logits)


def test_gende_classifier_inputs() -> None:
    for cls_input in ("encoder", "decoder", "both"):
        model = create_model("gende2022", img_size=64, width=8, cls_input=cls_input).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).cls_logits.shape == (1, 3)
    with pytest.raises(ValueError, match="cls_input"):
        create_model("gende2022", cls_input="bottleneck")


def test_swin_window_option_is_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        create_model("resformer_sequential", img_size=64, width=8, window_size=7)
    model = create_model("resformer_sequential", img_size=224, width=8, window_size=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).seg_logits.shape == (1, 2, 224, 224)


CONF = Path(medmtl.__file__).parent / "conf" / "model"


def test_every_model_has_a_hydra_config() -> None:
    assert {p.stem for p in CONF.glob("*.yaml")} == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_hydra_config_builds_its_model(name: str) -> None:
    options = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    assert options.pop("name") == name
    assert not {"num_classes", "num_seg_classes", "img_size"} & set(options)  # from dataset
    model = _model(name, img_size=64, **{**options, "width": 8}).eval()  # demo profile
    with torch.no_grad():
        _check_tasks(model, model(torch.randn(1, 3, 64, 64)), 1, 64)


def test_models_command_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    models_command.register(parser.add_subparsers())
    args = parser.parse_args(["models"])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    for name in MODELS:
        assert f"| {name} |" in table
    # Our own count (the paper gives none): it pins the table's format and catches an unnoticed
    # change of the architecture; its ResNet-34 part is checked against the published count in
    # test_resnet_encoders_have_the_published_parameter_counts.
    assert "| resformer_sequential | 45.44 M | 722.3 k |" in table


@pytest.mark.parametrize(
    ("kind", "depths", "published"),
    [  # torchvision's ResNet-18/34/50/101 totals minus the 1000-class fc layer (in x 1000 + 1000)
        ("basic", (2, 2, 2, 2), 11_689_512 - 513_000),
        ("basic", (3, 4, 6, 3), 21_797_672 - 513_000),
        ("bottleneck", (3, 4, 6, 3), 25_557_032 - 2_049_000),
        ("bottleneck", (3, 4, 23, 3), 44_549_160 - 2_049_000),
    ],
)
def test_resnet_encoders_have_the_published_parameter_counts(kind, depths, published) -> None:
    """The encoders of He 2020 (ResNet-101), Gende 2022 (ResNet-18), Tang 2023 (ResNet-50 stages),
    BTI-Net and ResFormer (ResNet-34) at width 64 are the published ResNets without their fc."""
    encoder = ResNetEncoder(kind, depths, 64)
    assert sum(p.numel() for p in encoder.parameters()) == published
