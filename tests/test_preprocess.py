"""`medmtl.data.preprocess`: the processed-dataset contract, atomic replacement, the loader."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medmtl.cli import main
from medmtl.data.common import RawCase
from medmtl.data.isic2017 import CLASS_NAMES
from medmtl.data.preprocess import preprocess, read_dataset
from medmtl.data.processed import FILES, load_processed
from medmtl.errors import UserError


@pytest.fixture(scope="module")
def processed_synthetic(synthetic_isic2017_raw: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("processed") / "synthetic"
    cases, class_names = read_dataset("synthetic", synthetic_isic2017_raw)
    preprocess(cases, out, dataset="synthetic", class_names=class_names, size=24)
    return out


def test_manifest_contract(processed_synthetic, synthetic_isic2017_raw):
    assert sorted(p.name for p in processed_synthetic.iterdir()) == sorted(FILES)
    table = pq.read_table(processed_synthetic / "manifest.parquet")
    strings = ["case_id", "subset", "label_name", "image_file", "mask_file", "image_sha256"]
    assert {f.name: f.type for f in table.schema} == {
        **{c: pa.string() for c in strings},
        **{c: pa.int64() for c in ("label", "height", "width")},
    }
    metadata = json.loads(table.schema.metadata[b"medmtl"])
    assert metadata == {"dataset": "synthetic", "class_names": list(CLASS_NAMES), "size": 24}
    manifest = table.to_pandas()
    assert list(manifest["subset"]) == ["train"] * 30 + ["val"] * 12 + ["test"] * 12
    for subset in ("train", "val", "test"):
        ids = list(manifest.loc[manifest["subset"] == subset, "case_id"])
        assert ids == sorted(ids)
    assert (manifest["label_name"] == [CLASS_NAMES[i] for i in manifest["label"]]).all()
    row = manifest.iloc[0]
    assert row["image_file"] == f"ISIC-2017_Training_Data/{row['case_id']}.jpg"
    assert (
        row["mask_file"]
        == f"ISIC-2017_Training_Part1_GroundTruth/{row['case_id']}_segmentation.png"
    )
    with zipfile.ZipFile(synthetic_isic2017_raw / "ISIC-2017_Training_Data.zip") as zf:
        data = zf.read(row["image_file"])
    assert row["image_sha256"] == hashlib.sha256(data).hexdigest()
    assert (row["width"], row["height"]) == Image.open(io.BytesIO(data)).size


def test_arrays_contract(processed_synthetic):
    data = load_processed(processed_synthetic)
    n = len(data.manifest)
    assert isinstance(data.images, np.memmap) and isinstance(data.masks, np.memmap)
    assert data.images.shape == (n, 24, 24, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (n, 24, 24) and data.masks.dtype == np.uint8
    assert set(np.unique(data.masks)) == {0, 1}
    assert data.class_names == CLASS_NAMES and data.size == 24 and data.dataset == "synthetic"
    with np.load(processed_synthetic / "native_masks.npz") as native:
        assert sorted(native.files) == sorted(data.manifest["case_id"])
    for i, row in data.manifest.iloc[::7].iterrows():
        native = data.native_mask(row["case_id"])
        assert native.dtype == bool and native.shape == (row["height"], row["width"])
        nearest = Image.fromarray(native.astype(np.uint8)).resize(
            (24, 24), Image.Resampling.NEAREST
        )
        np.testing.assert_array_equal(data.masks[i], np.asarray(nearest))
        # lesion pixels are darker than skin in every synthetic image, also after resizing
        lesion, skin = data.images[i][data.masks[i] == 1], data.images[i][data.masks[i] == 0]
        assert lesion.mean() < skin.mean()
    with pytest.raises(UserError, match="no mask for nope"):
        data.native_mask("nope")
    data.close()


def test_loader_names_missing_files_and_the_command(tmp_path, processed_synthetic):
    with pytest.raises(UserError, match=r"missing manifest.parquet, .*medmtl preprocess"):
        load_processed(tmp_path)


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'busy'; known: isic2017, synthetic"):
        read_dataset("busy", tmp_path)


class _DictFiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, name: str) -> bytes:
        if name not in self.files:
            raise UserError(f"dict:{name}: cannot read")
        return self.files[name]

    def describe(self, name: str) -> str:
        return f"dict:{name}"


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _case(case_id: str, subset: str, files: _DictFiles, *, shape=(10, 14), masks=1) -> RawCase:
    files.files[f"{case_id}.png"] = _encode(np.full((*shape, 3), 200, np.uint8), "PNG")
    mask_names = []
    for k in range(masks):
        mask = np.zeros(shape, np.uint8)
        mask[k, k] = 255
        files.files[f"{case_id}_mask{k}.png"] = _encode(mask, "PNG")
        mask_names.append(f"{case_id}_mask{k}.png")
    return RawCase(case_id, subset, "nevus", f"{case_id}.png", tuple(mask_names), files)


def test_rows_sorted_by_subset_then_id_and_masks_merged(tmp_path):
    files = _DictFiles({})
    cases = [
        _case("b", "test", files),
        _case("c", "train", files, masks=2),
        _case("a", "val", files),
        _case("a2", "train", files),
    ]
    preprocess(cases, tmp_path / "out", dataset="x", class_names=CLASS_NAMES, size=8)
    data = load_processed(tmp_path / "out")
    assert list(data.manifest["case_id"]) == ["a2", "c", "a", "b"]
    assert data.manifest.loc[1, "mask_file"] == "c_mask0.png;c_mask1.png"
    assert data.native_mask("c").sum() == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda f: [_case("a", "train", f), _case("a", "val", f)],
            "case id a occurs more than once",
        ),
        (lambda f: [_case("a", "holdout", f)], "subset 'holdout' is not one of"),
        (lambda f: [], "found no cases"),
    ],
)
def test_bad_case_lists(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        preprocess(
            make(_DictFiles({})), tmp_path / "out", dataset="x", class_names=CLASS_NAMES, size=8
        )


def test_failure_keeps_old_output_and_leaves_no_temp(tmp_path):
    out = tmp_path / "out"
    files = _DictFiles({})
    preprocess([_case("a", "train", files)], out, dataset="x", class_names=CLASS_NAMES, size=8)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    bad = _case("z", "train", files)
    files.files["z_mask0.png"] = _encode(np.zeros((3, 3), np.uint8), "PNG")  # wrong size
    with pytest.raises(UserError, match=r"dict:z_mask0\.png: mask size \(3, 3\) differs"):
        preprocess(
            [_case("a", "train", files), bad], out, dataset="x", class_names=CLASS_NAMES, size=8
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_rerun_replaces_output(tmp_path):
    out = tmp_path / "out"
    files = _DictFiles({})
    preprocess([_case("a", "train", files)], out, dataset="x", class_names=CLASS_NAMES, size=8)
    preprocess([_case("b", "val", files)], out, dataset="x", class_names=CLASS_NAMES, size=6)
    data = load_processed(out)
    assert list(data.manifest["case_id"]) == ["b"] and data.images.shape == (1, 6, 6, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_synthesize_then_preprocess(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "processed"
    synthesize = f"synthesize --out {raw} --seed 1 --n-train 6 --n-val 3 --n-test 3 --size 32"
    assert main(synthesize.split()) == 0
    assert main(f"preprocess --dataset synthetic --raw {raw} --out {out} --size 16".split()) == 0
    assert load_processed(out).images.shape == (12, 16, 16, 3)
    missing = tmp_path / "none"
    assert main(f"preprocess --dataset isic2017 --raw {missing} --out {out} --size 16".split()) == 2
    assert "no ISIC 2017 files found" in capsys.readouterr().err
