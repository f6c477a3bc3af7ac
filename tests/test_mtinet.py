"""MTI-Net (arXiv:2511.20793): its parts, its switches, and its adversarial training, which
logs both losses and resumes after SIGKILL to the same result as an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_train import _saved_epoch, _wait_for

from medmtl import tracking
from medmtl.models import create_model
from medmtl.models.mtinet import spatial_entropy
from medmtl.training.adversarial import Adversary

BIN = Path(sys.executable).parent
PHASES, TARGETS = 4, 3
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mtinet(name: str = "mtinet", **options) -> torch.nn.Module:
    return create_model(
        name, img_size=32, width=4, in_channels=PHASES, num_targets=TARGETS, **options
    )


def test_the_phases_are_its_channels_and_the_switches_remove_their_parts() -> None:
    torch.manual_seed(0)
    model = _mtinet().eval()
    with torch.no_grad():
        out = model(torch.randn(2, PHASES, 32, 32))
    assert out.seg_logits.shape == (2, 2, 32, 32)
    assert out.cls_logits.shape == (2, 3) and out.reg.shape == (2, TARGETS)
    names = {n for n, _ in model.named_parameters()}
    without = {n for n, _ in _mtinet("mtinet_no_mdief").named_parameters()}
    assert {n for n in names if n.startswith("mdief.")} and without == {
        n for n in names if not n.startswith("mdief.")
    }
    assert model.make_discriminator() is not None
    assert _mtinet("mtinet_no_tdd").make_discriminator() is None
    with pytest.raises(ValueError, match="two phases"):
        create_model("mtinet", img_size=32, width=4, in_channels=1, num_targets=TARGETS)


def test_spatial_entropy_is_one_for_a_flat_map_and_zero_for_a_peak() -> None:
    flat = torch.zeros(1, 2, 4, 4)
    peak = torch.full((1, 2, 4, 4), -1e4)
    peak[..., 1, 2] = 0.0
    assert spatial_entropy(flat).item() == pytest.approx(1.0)
    assert spatial_entropy(peak).item() == pytest.approx(0.0, abs=1e-6)


def test_the_discriminator_step_moves_the_discriminator_only() -> None:
    """The model's step carries the adversarial term with the discriminator frozen; the
    discriminator's step changes its weights and none of the model's."""
    torch.manual_seed(0)
    model = _mtinet().train()
    adversary = Adversary(model.make_discriminator(), 0.5, 1e-3, (0.9, 0.999), 1e-4)
    images = torch.randn(2, PHASES, 32, 32)
    out = model(images)
    task = torch.tensor(1.0)
    losses = adversary.generator_loss(images, out, task)
    assert losses["loss"].item() == pytest.approx(1.0 + 0.5 * losses["adv_g"].item())
    losses["loss"].backward()
    assert all(p.grad is None for p in adversary.discriminator.parameters())
    before_model = {k: v.clone() for k, v in model.state_dict().items()}
    before = [p.detach().clone() for p in adversary.discriminator.parameters()]
    masks, labels = torch.zeros(2, 32, 32, dtype=torch.long), torch.tensor([0, 1])
    loss = adversary.discriminator_step(images, out, masks, labels, torch.zeros(2, TARGETS))
    assert loss.item() > 0
    after = list(adversary.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before_model.items())


def test_a_case_without_targets_keeps_the_discriminator_finite() -> None:
    """A lesion-free case has NaN geometry targets (no lesion to measure): the discriminator's
    step stays finite, so no NaN reaches its weights and, through them, the model's."""
    torch.manual_seed(0)
    model = _mtinet().train()
    adversary = Adversary(model.make_discriminator(), 0.5, 1e-3, (0.9, 0.999), 1e-4)
    images = torch.randn(2, PHASES, 32, 32)
    out = model(images)
    targets = torch.tensor([[0.1, -0.2, 0.3], [float("nan")] * TARGETS])
    masks, labels = torch.zeros(2, 32, 32, dtype=torch.long), torch.tensor([0, 1])
    loss = adversary.discriminator_step(images, out, masks, labels, targets)
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in adversary.discriminator.parameters())
    adv = adversary.generator_loss(images, model(images), torch.tensor(0.0))["adv_g"]
    assert torch.isfinite(adv)


EPOCHS = 4


def _train(data: tuple[Path, Path], out: Path, uri: str, **popen) -> subprocess.Popen:
    data_dir, split_file = data
    args = ["train", "profile=tiny", "dataset=dynamic", "model=mtinet", "seed=1",
            f"data_dir={data_dir}", f"split_file={split_file}", f"out={out}",
            f"tracking.uri={uri}", f"trainer.epochs={EPOCHS}"]  # fmt: skip
    return subprocess.Popen([BIN / "medmtl", *args], **popen)


def test_adversarial_training_logs_both_losses_and_resumes_to_the_same_result(
    processed_dynamic, tracking_uri, tmp_path
):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert _train(processed_dynamic, whole, tracking_uri).wait() == 0
    record = json.loads((whole / "run.json").read_text())
    assert record["tasks"] == ["seg", "cls", "reg"]
    assert record["regression"]["names"] == ["wash_in_amplitude", "wash_in_time", "delayed_slope"]
    history = pd.read_csv(whole / "history.csv")
    assert {"train_adv_g", "train_adv_d", "train_reg", "val_reg"} <= set(history.columns)
    assert "val_adv_g" not in history  # checkpoint selection ignores the adversarial terms
    logged = tracking.client(tracking_uri).get_metric_history(
        record["mlflow_run_id"], "train_adv_d"
    )
    assert [m.step for m in logged] == list(range(1, EPOCHS + 1))
    for _attempt in range(3):  # a tiny epoch is short: a busy machine can miss the moment
        job = _train(processed_dynamic, resumed, tracking_uri, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)  # fmt: skip
        _wait_for(lambda: (resumed / "last.pt").exists(), job)
        job.kill()
        job.wait()
        if not (resumed / "run.json").exists():
            break
        for path in resumed.iterdir():
            path.unlink()
    else:
        pytest.fail("the job finished before it could be killed, three times")
    assert 1 <= _saved_epoch(resumed) < EPOCHS
    assert _train(processed_dynamic, resumed, tracking_uri).wait() == 0
    frames = [
        pd.read_csv(d / "history.csv").drop(columns="epoch_seconds") for d in (whole, resumed)
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    for name in ("best.pt", "last.pt"):
        saved = [torch.load(d / name, weights_only=False) for d in (whole, resumed)]
        if name == "last.pt":  # the discriminator and its optimiser resumed too
            saved = [s["adversary"]["discriminator"] for s in saved]
        assert [k for k in saved[0] if not torch.equal(saved[0][k], saved[1][k])] == []
