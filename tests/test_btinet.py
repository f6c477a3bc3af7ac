"""BTI-Net's interaction and gates (shapes, gradients, sizes: tests/test_models.py): UPA weights
per image and level in (0, 1), TIM's decoder factor in [1, 1 + tau], gating as a blend."""

from __future__ import annotations

import torch

from medmtl.models import create_model
from medmtl.models.btinet import TaskInteraction, UncertaintyProxyGate


def test_gates_are_per_image_and_level_in_open_unit_interval() -> None:
    torch.manual_seed(0)
    model = create_model("btinet", img_size=64, width=8).eval()
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        out = model.forward_with_gates(x)
        plain = model(x)
    assert out.gates.shape == (5, 4, 2)
    assert ((out.gates > 0) & (out.gates < 1)).all()
    assert (out.gates.std(0) > 0).all()  # each image gets its own weights at every level
    assert torch.equal(out.seg_logits, plain.seg_logits)
    assert torch.equal(out.cls_logits, plain.cls_logits)
    with torch.no_grad():  # an image's gates do not depend on the rest of the batch (eval)
        assert torch.allclose(model.forward_with_gates(x[:1]).gates, out.gates[:1], atol=1e-6)


def test_interaction_enhances_the_decoder_by_at_most_tau() -> None:
    torch.manual_seed(0)
    tim = TaskInteraction(seg_ch=6, clf_dim=16, tau=0.7).train()
    seg = torch.rand(4, 6, 8, 8) + 0.1
    seg_enh, clf_enh = tim(seg, torch.randn(4, 16))
    factor = seg_enh / seg
    assert clf_enh.shape == (4, 16)
    assert (factor >= 1).all() and (factor <= 1.7).all()
    assert torch.allclose(factor, factor[:, :, :1, :1].expand_as(factor))  # channel-wise


def test_gate_blends_base_and_enhanced_features() -> None:
    torch.manual_seed(0)
    upa = UncertaintyProxyGate(seg_ch=6, clf_dim=16, proj_dim=8)
    seg, clf = torch.randn(3, 6, 8, 8), torch.randn(3, 16)
    seg_enh, clf_enh = seg * 1.5, clf + torch.randn(3, 16)
    assert upa.signals(seg, seg_enh, clf, clf_enh).shape == (3, 3)
    seg_out, clf_out, weights = upa(seg, seg_enh, clf, clf_enh)
    assert weights.shape == (3, 2)
    w_seg, w_cls = weights[:, 0, None, None, None], weights[:, 1:]
    assert torch.allclose(seg_out, (1 - w_seg) * seg + w_seg * seg_enh, atol=1e-6)
    assert torch.allclose(clf_out, (1 - w_cls) * clf + w_cls * clf_enh, atol=1e-6)
