"""Our per-image JI/DSC and their means against the official ISIC challenge scorer, on real masks.

Oracle: PyPI `isic-challenge-scoring` 5.6.0 (test-only dependency), the scorer of the ISIC
lesion-segmentation task. `SegmentationScore.from_dir(truth_dir, pred_dir)` reads the truth
PNGs (`ISIC_XXXXXXX_segmentation.png`) and the matching prediction PNGs (`load_image`),
thresholds both at > 128, builds one binary confusion matrix per image (`confusion`), scores
`binary_jaccard` = TP / (TP + FP + FN) and `binary_dice` = 2TP / (2TP + FP + FN) per image
(`metrics`) and reports their unweighted mean over images (`macro_average`). Per-image values
are taken from the same files through the scorer's own `iter_image_pairs` and
`create_binary_confusion_matrix` (from_dir keeps only the means).

Masks: the first `N_IMAGES` sorted ISIC 2017 validation ground-truth masks of the offline
mirror, decoded as our pipeline decodes them (`medmtl.data.decode.decode_mask`); predictions are
seeded perturbations of them (dilation, erosion, shift, random pixel flips, empty, full). Both
resolutions the evaluation writes are checked: native ("clean", `native_tp/fp/fn`) and the
model input size ("paper-faithful", `seg_tp/fp/fn`; both masks resized with the preprocessing's
own nearest resize, `medmtl.data.preprocess._resize`).

Definition difference on purpose: an empty ground truth. The scorer calls JI/DSC "ill-defined"
there and scores 1.0 for an empty prediction and 0.0 for any predicted pixel; our `jaccard` and
`dice` return NaN and `mean_percent` skips the image, because the paper-faithful metrics follow
the authors' evaluation, whose `Evaluator` returns None for an empty ground truth (module notes
of src/medmtl/evaluation/metrics.py). The test
`test_empty_ground_truth_is_skipped_where_the_scorer_scores_it` pins that difference down. Not
compared here: the scorer's headline `threshold_jaccard` (per-image JI set to 0 below 0.65),
which is not a metric of the paper.
"""

from __future__ import annotations

import importlib.resources
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from isic_challenge_scoring import metrics as official_metrics
from isic_challenge_scoring.confusion import create_binary_confusion_matrix
from isic_challenge_scoring.load_image import iter_image_pairs
from isic_challenge_scoring.segmentation import SegmentationScore
from PIL import Image
from scipy import ndimage

from medmtl.data.decode import decode_mask
from medmtl.data.preprocess import _resize
from medmtl.evaluation import metrics, predict

N_IMAGES = 25
SEED = 2017
KINDS = ("dilate", "erode", "shift", "flip", "empty", "full")
GT_ZIP = "ISIC-2017_Validation_Part1_GroundTruth.zip"
# Ids of the synthetic empty-ground-truth cases (no real ISIC id contains these digits).
EMPTY_GT_IDS = {"empty_pred": "ISIC_9900001", "some_pred": "ISIC_9900002"}
TOL = 1e-9
# The scorer (5.6.0) calls `Series.rename(inplace=True)`, deprecated by pandas: not our code.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in Series.rename")


def input_size() -> int:
    """The model input size of the ISIC 2017 configuration (224 px, paper Sec. 4)."""
    conf = importlib.resources.files("medmtl") / "conf/dataset/isic2017.yaml"
    return int(yaml.safe_load(conf.read_text())["img_size"])


def to_input_size(mask: np.ndarray) -> np.ndarray:
    """A native bool mask at the model input size, resized as preprocessing resizes masks."""
    return _resize(mask.astype(np.uint8), input_size(), Image.Resampling.NEAREST).astype(bool)


def perturb(mask: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A deterministic imperfect prediction of `mask` (bool, same shape)."""
    if kind == "dilate":
        return ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 8)))
    if kind == "erode":
        return ndimage.binary_erosion(mask, iterations=int(rng.integers(1, 8)))
    if kind == "shift":
        dy, dx = (int(v) for v in rng.integers(-20, 21, size=2))
        return ndimage.shift(mask.astype(np.uint8), (dy, dx), order=0, cval=0).astype(bool)
    if kind == "flip":
        return mask ^ (rng.random(mask.shape) < rng.uniform(0.01, 0.2))
    if kind == "empty":
        return np.zeros_like(mask)
    if kind == "full":
        return np.ones_like(mask)
    raise ValueError(kind)


@pytest.fixture(scope="module")
def truth_masks(isic2017_mirror_dir: Path) -> dict[str, np.ndarray]:
    """Image id -> native bool ground-truth mask, first `N_IMAGES` ids in sorted order."""
    with zipfile.ZipFile(isic2017_mirror_dir / GT_ZIP) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith("_segmentation.png"))
        masks = {
            Path(n).name.removesuffix("_segmentation.png"): decode_mask(archive.read(n), n)
            for n in names[:N_IMAGES]
        }
    assert len(masks) == N_IMAGES and all(m.any() for m in masks.values())
    return masks


@pytest.fixture(scope="module")
def predictions(truth_masks: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Kind -> image id -> native bool prediction (seeded per kind and image)."""
    return {
        kind: {
            image_id: perturb(mask, kind, np.random.default_rng([SEED, k, i]))
            for i, (image_id, mask) in enumerate(truth_masks.items())
        }
        for k, kind in enumerate(KINDS)
    }


def write_pngs(folder: Path, masks: dict[str, np.ndarray]) -> Path:
    """`folder/ISIC_XXXXXXX_segmentation.png` per mask, 8-bit L 0/255 (the official layout)."""
    folder.mkdir(parents=True)
    for image_id, mask in masks.items():
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{image_id}_segmentation.png")
    return folder


def score_officially(
    folder: Path, truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, pd.Series]:
    """(per-image TP/FP/FN/jaccard/dice by image id, macro averages) of the official scorer on
    `truth` and `pred` written as PNGs into `folder/truth` and `folder/pred`."""
    truth_dir, pred_dir = write_pngs(folder / "truth", truth), write_pngs(folder / "pred", pred)
    rows = {}
    for pair in iter_image_pairs(truth_dir, pred_dir):
        cm = create_binary_confusion_matrix(
            truth_binary_values=pair.truth_image > 128,
            prediction_binary_values=pair.prediction_image > 128,
            name=pair.image_id,
        )
        rows[pair.image_id] = {
            "TP": cm.at["TP"],
            "FP": cm.at["FP"],
            "FN": cm.at["FN"],
            "jaccard": official_metrics.binary_jaccard(cm),
            "dice": official_metrics.binary_dice(cm),
        }
    per_image = pd.DataFrame.from_dict(rows, orient="index")
    macro = SegmentationScore.from_dir(truth_dir, pred_dir).macro_average
    # Our reproduction of the per-image values is the scorer's: its means are the scorer's.
    assert per_image["jaccard"].mean() == pytest.approx(macro["jaccard"], abs=TOL)
    assert per_image["dice"].mean() == pytest.approx(macro["dice"], abs=TOL)
    return per_image, macro


def evaluation_frame(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> pd.DataFrame:
    """The `seg_*` (input size) and `native_*` count columns as the evaluation stage writes
    them, with its torch counting (`medmtl.evaluation.predict.pixel_counts(pred, truth)`)."""
    rows = []
    for image_id, gt in truth.items():
        small_pred = torch.from_numpy(to_input_size(pred[image_id]))
        native_pred = torch.from_numpy(pred[image_id])
        rows.append(
            (
                image_id,
                *predict.pixel_counts(small_pred, torch.from_numpy(to_input_size(gt))),
                *predict.pixel_counts(native_pred, torch.from_numpy(gt)),
            )
        )
    columns = ["image_id", "seg_tp", "seg_fp", "seg_fn", "native_tp", "native_fp", "native_fn"]
    return pd.DataFrame(rows, columns=columns).set_index("image_id")


@pytest.mark.parametrize("kind", KINDS)
def test_per_image_ji_and_dsc_equal_the_official_scorer(
    kind: str, truth_masks: dict, predictions: dict, tmp_path: Path
):
    """Non-empty truth, numpy and torch counting, native (clean) and input size (faithful)."""
    pred = predictions[kind]
    resolutions = {
        "native": (truth_masks, pred),
        "input_size": (
            {i: to_input_size(m) for i, m in truth_masks.items()},
            {i: to_input_size(m) for i, m in pred.items()},
        ),
    }
    for resolution, (truth, pred_at) in resolutions.items():
        official, _ = score_officially(tmp_path / resolution, truth, pred_at)
        assert sorted(official.index) == sorted(truth)
        for image_id, gt in truth.items():
            want = official.loc[image_id]
            p = pred_at[image_id]
            counts = {
                "numpy": metrics.pixel_counts(gt, p),
                "torch": predict.pixel_counts(torch.from_numpy(p), torch.from_numpy(gt)),
            }
            for path, (tp, fp, fn) in counts.items():
                where = f"{kind} {resolution} {path} {image_id}"
                assert (tp, fp, fn) == (want["TP"], want["FP"], want["FN"]), where
                assert float(metrics.jaccard(tp, fp, fn)) == pytest.approx(
                    want["jaccard"], abs=TOL
                ), where
                assert float(metrics.dice(tp, fp, fn)) == pytest.approx(want["dice"], abs=TOL), (
                    where
                )


@pytest.mark.parametrize("kind", KINDS)
def test_means_equal_the_official_macro_average(
    kind: str, truth_masks: dict, predictions: dict, tmp_path: Path
):
    """Only non-empty truths: our means (x100) are the scorer's macro averages, per column set."""
    pred = predictions[kind]
    frame = evaluation_frame(truth_masks, pred)
    official = {
        "native": score_officially(tmp_path / "native", truth_masks, pred)[1],
        "seg": score_officially(
            tmp_path / "input_size",
            {i: to_input_size(m) for i, m in truth_masks.items()},
            {i: to_input_size(m) for i, m in pred.items()},
        )[1],
    }
    for prefix, macro in official.items():
        ji, dsc = metrics.segmentation_summary(frame, prefix)
        assert ji / 100 == pytest.approx(macro["jaccard"], abs=TOL), (kind, prefix)
        assert dsc / 100 == pytest.approx(macro["dice"], abs=TOL), (kind, prefix)
        counts = [frame[f"{prefix}_{c}"] for c in ("tp", "fp", "fn")]
        assert metrics.mean_percent(metrics.jaccard(*counts)) == pytest.approx(ji, abs=TOL)
        assert metrics.mean_percent(metrics.dice(*counts)) == pytest.approx(dsc, abs=TOL)


def test_empty_ground_truth_is_skipped_where_the_scorer_scores_it(
    truth_masks: dict, predictions: dict, tmp_path: Path
):
    """The documented difference: empty truth is 1.0 / 0.0 officially, NaN (skipped) for us."""
    shape = next(iter(truth_masks.values())).shape
    empty_truth = {image_id: np.zeros(shape, bool) for image_id in EMPTY_GT_IDS.values()}
    empty_pred = {
        EMPTY_GT_IDS["empty_pred"]: np.zeros(shape, bool),
        EMPTY_GT_IDS["some_pred"]: next(iter(truth_masks.values())).copy(),  # a real lesion
    }
    assert empty_pred[EMPTY_GT_IDS["some_pred"]].any()
    official_empty, _ = score_officially(tmp_path / "empty_only", empty_truth, empty_pred)
    expected_official = {"empty_pred": 1.0, "some_pred": 0.0}
    for case, image_id in EMPTY_GT_IDS.items():
        gt, p = empty_truth[image_id], empty_pred[image_id]
        for metric in ("jaccard", "dice"):
            assert official_empty.at[image_id, metric] == expected_official[case], (case, metric)
        for counts in (
            metrics.pixel_counts(gt, p),
            predict.pixel_counts(torch.from_numpy(p), torch.from_numpy(gt)),
        ):
            assert np.isnan(metrics.jaccard(*counts)), case
            assert np.isnan(metrics.dice(*counts)), case

    # A set with both empty-truth images among the real ones (native resolution, "clean").
    pred = predictions["dilate"]
    truth_all, pred_all = {**truth_masks, **empty_truth}, {**pred, **empty_pred}
    per_image_all, macro_all = score_officially(tmp_path / "all", truth_all, pred_all)
    _, macro_nonempty = score_officially(tmp_path / "nonempty", truth_masks, pred)
    # The scorer counts the empty-truth images: its mean is over all N + 2 images.
    assert len(per_image_all) == N_IMAGES + 2
    for metric in ("jaccard", "dice"):
        counted = (N_IMAGES * macro_nonempty[metric] + 1.0 + 0.0) / (N_IMAGES + 2)
        assert macro_all[metric] == pytest.approx(counted, abs=TOL), metric

    frame = evaluation_frame(truth_all, pred_all)
    ji, dsc = metrics.segmentation_summary(frame, "native")
    for ours, metric in ((ji, "jaccard"), (dsc, "dice")):
        assert ours / 100 == pytest.approx(macro_nonempty[metric], abs=TOL), metric
        assert abs(ours / 100 - macro_all[metric]) > 1e-3, metric
