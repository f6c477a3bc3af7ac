"""Dynamic (multi-phase) studies: the reader of one folder per subject, on fixtures written by
hand in that layout, and the synthetic generator, whose images follow the targets it writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medmtl.data.dynamic import read_dynamic
from medmtl.data.preprocess import preprocess
from medmtl.data.processed import load_processed
from medmtl.data.synthetic_dynamic import SLOPES, enhancement, write_dynamic
from medmtl.errors import UserError


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _release(root: Path, rows: str, phases: dict[str, list[np.ndarray]], masks=None) -> Path:
    """subjects.csv with `rows` (after its header line), each subject's phases and mask."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "subjects.csv").write_text(rows)
    for subject, images in phases.items():
        (root / subject).mkdir()
        for t, image in enumerate(images):
            (root / subject / f"phase_{t:02d}.png").write_bytes(_png(image))
        mask = (masks or {}).get(subject, np.pad(np.ones((2, 2), np.uint8) * 255, 1))
        (root / subject / "mask.png").write_bytes(_png(mask))
    return root


def _study(low: int, high: int, dtype=np.uint16) -> list[np.ndarray]:
    """Three 4 x 4 phases whose top-left pixel enhances from `low` to `high`."""
    phases = []
    for value in (low, (low + high) // 2, high):
        image = np.full((4, 4), low, dtype)
        image[0, 0] = value
        phases.append(image)
    return phases


def test_a_release_in_the_layout_reads_with_phases_scaled_together(tmp_path):
    """Every phase of a subject by one factor, so its relative enhancement survives."""
    rows = "subject,label,subset,peak\nA,benign,train,1.5\nB,malignant,test,0.25\n"
    root = _release(tmp_path / "release", rows, {"A": _study(1000, 3000),
                                                 "B": _study(10, 60, np.uint8)})  # fmt: skip
    (root / "targets.txt").write_text("peak enhancement of the lesion\n")
    cases = list(read_dynamic(root))
    assert [(c.case_id, c.subset, c.label_name, c.targets) for c in cases] == [
        ("A", "train", "benign", (("peak", 1.5),)),
        ("B", "test", "malignant", (("peak", 0.25),)),
    ]
    image = cases[0].load_image()
    assert image.shape == (4, 4, 3) and image.dtype == np.uint8
    # one scale for all phases, the subject's maximum: 3000 -> 255, ratios kept
    assert image[0, 0].tolist() == [85, 170, 255] and image[1, 1].tolist() == [85, 85, 85]
    assert cases[0].load_mask().sum() == 4
    processed = tmp_path / "processed"
    preprocess(iter(cases), processed, dataset="dynamic", class_names=("benign", "malignant"),
               size=8)  # fmt: skip
    data = load_processed(processed)
    assert data.channels == 3 and data.target_names == ("peak",)
    assert data.targets_note == "peak enhancement of the lesion"
    np.testing.assert_array_equal(data.targets(["B", "A"]), [[0.25], [1.5]])


def test_without_subsets_every_subject_is_all(tmp_path):
    root = _release(tmp_path, "subject,label\nA,benign\n", {"A": _study(0, 9)})
    assert [c.subset for c in read_dynamic(root)] == ["all"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("subject,label\nA,cyst\n", "label 'cyst' is not one of benign, malignant"),
        ("subject,label,subset\nA,benign,holdout\n", "subset 'holdout' is not one of"),
        ("subject,label,peak\nA,benign,high\n", "row 2, peak: 'high' is not a finite number"),
        ("subject,label,peak\nA,benign,nan\n", "'nan' is not a finite number"),
        ("subject,label\nA,benign\nA,benign\n", "subjects listed twice: A"),
        ("subject,label\nZ,benign\n", "subject folder"),
        ("patient,label\nA,benign\n", "needs a header with subject and label"),
        ("subject,label,Ktrans(1/min)\nA,benign,0.2\n", r"letters, digits.*'Ktrans\(1/min\)'"),
    ],
)
def test_bad_tables_name_the_file_and_row(tmp_path, rows, message):
    root = _release(tmp_path, rows, {"A": _study(0, 9)})
    with pytest.raises(UserError, match=message) as raised:
        read_dynamic(root)
    assert str(root) in str(raised.value)


def test_bad_phases_and_masks_name_the_file(tmp_path):
    root = _release(tmp_path / "gap", "subject,label\nA,benign\n", {"A": _study(0, 9)})
    (root / "A/phase_01.png").unlink()
    with pytest.raises(UserError, match="phase_00.png, phase_01.png, ... without gaps"):
        read_dynamic(root)
    rows = "subject,label\nA,benign\nB,benign\n"
    root = _release(tmp_path / "counts", rows, {"A": _study(0, 9), "B": _study(0, 9)[:2]})
    with pytest.raises(UserError, match="different numbers of phases"):
        read_dynamic(root)
    root = _release(tmp_path / "mask", "subject,label\nA,benign\n", {"A": _study(0, 9)},
                    masks={"A": np.zeros((5, 4), np.uint8)})  # fmt: skip
    with pytest.raises(UserError, match=r"A/mask.png: mask size \(4, 5\) differs"):
        read_dynamic(root)
    colour = [np.zeros((4, 4, 3), np.uint8)] * 3
    root = _release(tmp_path / "colour", "subject,label\nA,benign\n", {"A": colour})
    with pytest.raises(UserError, match="phase_00.png: mode RGB: expected a grayscale image"):
        next(read_dynamic(root)).load_image()
    root = _release(tmp_path / "nomask", "subject,label\nA,benign\n", {"A": _study(0, 9)})
    (root / "A/mask.png").unlink()
    with pytest.raises(UserError, match="mask.png: missing"):
        read_dynamic(root)


def test_the_synthetic_studies_follow_their_targets_and_are_deterministic(tmp_path):
    write_dynamic(tmp_path / "a", seed=5, n_train=30, n_val=1, n_test=1, phases=6, size=48)
    write_dynamic(tmp_path / "b", seed=5, n_train=30, n_val=1, n_test=1, phases=6, size=48)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    table = pd.read_csv(tmp_path / "a/subjects.csv")
    times = np.arange(6.0)
    for row in table.itertuples():
        folder = tmp_path / "a" / row.subject
        mask = np.asarray(Image.open(folder / "mask.png")) > 0
        phases = [np.asarray(Image.open(folder / f"phase_{t:02d}.png"), float) for t in range(6)]
        lesion = np.array([p[mask].mean() for p in phases])
        expected = 1 + enhancement(
            times, row.wash_in_amplitude, row.wash_in_time, row.delayed_slope
        )
        # the lesion's mean over time is its curve up to texture and noise (a few %)
        np.testing.assert_allclose(lesion / lesion[0], expected, rtol=0.06)
        family = next(f for f, (low, high) in SLOPES.items() if low <= row.delayed_slope <= high)
        if family != "plateau":  # wash-out: malignant; persistent: benign; plateau: its shape
            assert row.label == ("malignant" if family == "washout" else "benign")
    assert set(table["label"]) == {"benign", "malignant"}
