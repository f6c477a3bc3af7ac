"""`medmtl.data.splits`: policies, stratification, sorted ids, write-once files, the CLI."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from medmtl.cli import main
from medmtl.data.isic2017 import CLASS_NAMES, read_isic2017
from medmtl.data.splits import load_splits, make_splits, write_splits
from medmtl.errors import UserError


def _manifest(counts: dict[tuple[str, int], int]) -> pd.DataFrame:
    rows = []
    for (subset, label), n in counts.items():
        rows += [
            {
                "case_id": f"{subset}_{label}_{i:04d}",
                "subset": subset,
                "label": label,
                "image_sha256": f"{subset}{label}{i}",
            }
            for i in range(n)
        ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def _split(manifest: pd.DataFrame, seed: int = 1, fraction: float = 0.1) -> dict:
    return make_splits(manifest, dataset="d", seed=seed, val_fraction=fraction)


def test_official_parts_used_as_released():
    manifest = _manifest({("train", 0): 5, ("val", 1): 3, ("test", 2): 4})
    splits = _split(manifest)
    assert list(splits) == ["dataset", "policy", "seed", "cases_sha256", "train", "val", "test"]
    for subset in ("train", "val", "test"):
        assert splits[subset] == sorted(manifest.loc[manifest["subset"] == subset, "case_id"])
    assert splits["policy"].startswith("Official parts as released")


def test_fallback_validation_becomes_test_and_val_is_stratified():
    manifest = _manifest(
        {
            ("train", 0): 300,
            ("train", 1): 85,
            ("train", 2): 2,
            ("train", 3): 1,
            ("val", 0): 7,
            ("val", 2): 3,
        }
    )
    splits = _split(manifest)
    assert splits["test"] == sorted(manifest.loc[manifest["subset"] == "val", "case_id"])
    label = dict(zip(manifest["case_id"], manifest["label"], strict=True))
    assert Counter(label[i] for i in splits["val"]) == {
        0: 30,
        1: 9,
        2: 1,
    }  # 8.5 rounds up; class 3: one case
    training = set(manifest.loc[manifest["subset"] == "train", "case_id"])
    assert set(splits["train"]) | set(splits["val"]) == training
    assert not set(splits["train"]) & set(splits["val"])
    assert all(splits[k] == sorted(splits[k]) for k in ("train", "val", "test"))
    assert "test = official validation (10)" in splits["policy"]
    assert "stratified random 0.1" in splits["policy"] and "seed 1" in splits["policy"]


def test_fallback_is_seeded():
    manifest = _manifest({("train", 0): 50, ("train", 1): 50, ("val", 0): 5})
    assert _split(manifest, seed=3) == _split(manifest.iloc[::-1], seed=3)
    assert _split(manifest, seed=3)["val"] != _split(manifest, seed=4)["val"]


@pytest.mark.parametrize(
    ("counts", "fraction", "message"),
    [
        ({("train", 0): 5}, 0.1, r"has subsets \['train'\]"),
        ({("train", 0): 5, ("test", 0): 5}, 0.1, "a split needs"),
        ({("train", 0): 5, ("val", 0): 5}, 1.0, r"val_fraction must be in \(0, 1\)"),
    ],
)
def test_unsupported_inputs(counts, fraction, message):
    with pytest.raises(UserError, match=message):
        _split(_manifest(counts), fraction=fraction)


def test_duplicate_ids_are_refused():
    manifest = _manifest({("train", 0): 3, ("val", 0): 2})
    manifest.iloc[0, 0] = manifest.iloc[1, 0]
    with pytest.raises(UserError, match="not unique"):
        _split(manifest)


def test_write_once(tmp_path):
    path = tmp_path / "splits" / "d.json"
    splits = _split(_manifest({("train", 0): 20, ("val", 0): 5}))
    assert write_splits(splits, path) is True
    written = path.read_bytes()
    assert write_splits(splits, path) is False
    assert path.read_bytes() == written
    assert load_splits(path) == splits
    with pytest.raises(UserError, match="split file exists and differs; delete it deliberately"):
        write_splits({**splits, "seed": 2}, path)
    assert path.read_bytes() == written
    assert [p.name for p in path.parent.iterdir()] == ["d.json"]


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match=r"d\.json is missing; make it with `medmtl splits"):
        load_splits(tmp_path / "d.json")
    (tmp_path / "d.json").write_text("{")
    with pytest.raises(UserError, match="not valid json"):
        load_splits(tmp_path / "d.json")
    (tmp_path / "d.json").write_text(json.dumps({"dataset": "d"}))
    with pytest.raises(UserError, match="missing keys"):
        load_splits(tmp_path / "d.json")


def test_real_mirror_fallback_split(isic2017_mirror_dir):
    cases = list(read_isic2017(isic2017_mirror_dir))
    manifest = pd.DataFrame(
        {
            "case_id": c.case_id,
            "subset": c.subset,
            "label": CLASS_NAMES.index(c.label_name),
            "image_sha256": c.image_file,
        }
        for c in cases
    )
    splits = make_splits(manifest, dataset="isic2017", seed=12345, val_fraction=0.1)
    label = dict(zip(manifest["case_id"], manifest["label"], strict=True))
    assert Counter(label[i] for i in splits["val"]) == {0: 137, 1: 37, 2: 25}
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (1801, 199, 150)


def test_cli_writes_once(synthetic_isic2017_raw, tmp_path, capsys):
    processed, out = tmp_path / "processed", tmp_path / "splits.json"
    preprocess = f"preprocess --dataset synthetic --raw {synthetic_isic2017_raw} --out {processed}"
    splits_cmd = f"splits --processed {processed} --out {out}".split()
    assert main([*preprocess.split(), "--size", "16"]) == 0
    assert main(splits_cmd) == 0
    splits = load_splits(out)
    assert splits["dataset"] == "synthetic" and splits["seed"] == 12345
    assert splits["policy"].startswith("Official parts")  # synthetic has all three parts
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (30, 12, 12)
    assert main(splits_cmd) == 0
    assert "unchanged" in capsys.readouterr().out
    # the split fingerprints the cases, not the arrays: another size keeps the same split
    assert main([*preprocess.split(), "--size", "8"]) == 0
    assert main(splits_cmd) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main([*splits_cmd, "--seed", "1"]) == 2
    assert "split file exists and differs" in capsys.readouterr().err
