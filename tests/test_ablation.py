"""The ablations of paper Tables 8 and 9: switches, params checks, rendering, tests, audit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from medmtl.commands import ablation_table as ablation_table_cmd
from medmtl.errors import UserError
from medmtl.evaluation.predictions import write_prediction_file
from medmtl.hashing import file_sha256
from medmtl.models import create_model
from medmtl.pipeline import ablation
from medmtl.pipeline.config import compose_config
from medmtl.pipeline.params import validate_params
from medmtl.reporting import ablation_table, audit, table_tex, tables
from medmtl.training.losses import MultiTaskLoss

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]
MODELS = ["resformer_sequential", "resformer_parallel"]
SEEDS = (0, 1)
N_CASES = 30
REQUIRED = ["out=o", "data_dir=d", "split_file=s"]
SUBSETS = ("train", "val", "test")


def _params(**changes) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {**params, **changes}


# --- switches and params ---------------------------------------------------------------------


def test_switches_are_config_changes_of_the_same_model() -> None:
    full = compose_config(["model=resformer_parallel", *REQUIRED])
    cls_only = compose_config(["model=resformer_parallel", "ablation=cls_only", *REQUIRED])
    seg_only = compose_config(["model=resformer_parallel", "ablation=seg_only", *REQUIRED])
    no_dfe = compose_config(["model=resformer_parallel", "ablation=no_dfe", *REQUIRED])
    assert full.ablation_name is None and full.model.use_dfe and full.trainer.seg_weight == 1.0
    assert (cls_only.trainer.seg_weight, cls_only.trainer.cls_weight) == (0.0, 0.25)
    assert (seg_only.trainer.seg_weight, seg_only.trainer.cls_weight) == (1.0, 0.0)
    assert no_dfe.model.use_dfe is False and no_dfe.model.name == "resformer_parallel"
    assert no_dfe.model.width == full.model.width  # applied after the profile, changes one key


def test_run_names() -> None:
    assert ablation.run_name("resformer_sequential", None) == "resformer_sequential"
    assert ablation.run_name("resformer_sequential", "no_dfe") == "resformer_sequential-no_dfe"


def test_a_switch_a_model_does_not_have_is_refused() -> None:
    ablation.check_applies("resformer_sequential", "no_dfe")
    ablation.check_applies("he2020", "cls_only")  # loss switches apply to every model
    with pytest.raises(UserError, match="no_dfe sets model option.*use_dfe.*he2020"):
        ablation.check_applies("he2020", "no_dfe")
    with pytest.raises(UserError, match="'no_such' is not one of"):
        ablation.check_applies("he2020", "no_such")


@pytest.mark.parametrize(("switch", "idle_head"), [("cls_only", "seg"), ("seg_only", "cls")])
def test_a_zero_weight_leaves_the_other_head_without_gradient(switch, idle_head) -> None:
    torch.manual_seed(0)
    cfg = compose_config(["model=resunet", f"ablation={switch}", "profile=tiny", *REQUIRED])
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    model = create_model(cfg.model.name, num_classes=3, img_size=32, **options)
    loss_fn = MultiTaskLoss(cfg.trainer.cls_weight, cfg.trainer.seg_weight, None)
    images, masks = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    loss_fn(model(images), masks, torch.tensor([0, 2]))["loss"].backward()
    head = model.seg_head if idle_head == "seg" else model.cls_head
    other = model.cls_head if idle_head == "seg" else model.seg_head
    assert all(p.grad is None or not p.grad.any() for p in head.parameters())
    assert any(p.grad is not None and p.grad.any() for p in other.parameters())


def test_params_ablations_are_checked() -> None:
    validate_params(_params())
    with pytest.raises(UserError, match="ablations.models: 'resformer_parallel' is not in"):
        validate_params(_params(models=["he2020", "resformer_sequential"]), "x.yaml")
    with pytest.raises(UserError, match="ablations.variants.*need exactly"):
        validate_params(_params(ablations={"models": MODELS, "variants": ["cls_only"]}))
    variants = ["cls_only", "seg_only", "no_dfe"]
    with pytest.raises(UserError, match="which he2020 does not have"):
        validate_params(_params(ablations={"models": ["he2020"], "variants": variants}))


def test_table_inputs_are_the_full_runs_and_the_needed_ablations() -> None:
    params = _params(seeds=[0])
    inputs = ablation.table_inputs(params, "table9")
    assert inputs == [
        "results/predictions/synthetic_test/resformer_sequential/seed0.parquet",
        "results/predictions/synthetic_test/resformer_parallel/seed0.parquet",
        "results/ablations/predictions/synthetic_test/resformer_sequential-no_dfe/seed0.parquet",
        "results/ablations/predictions/synthetic_test/resformer_parallel-no_dfe/seed0.parquet",
    ]


# --- layout and tests ------------------------------------------------------------------------


def test_table8_layout_groups_per_model_and_blanks_the_untrained_task() -> None:
    layout = ablation_table.layout(ablation.TABLES["table8"], MODELS)
    assert list(layout.rows.values())[:3] == [
        "ResFormer - Sequential: Cls. only",
        "ResFormer - Sequential: Seg. only",
        "ResFormer - Sequential: Both",
    ]
    assert layout.groups[1] == (
        "resformer_parallel-cls_only",
        "resformer_parallel-seg_only",
        "resformer_parallel",
    )
    assert layout.scored["resformer_parallel-cls_only"] == ("Acc", "Sen", "Spe")
    assert layout.scored["resformer_parallel-seg_only"] == ("JI", "DSC")
    assert "resformer_parallel" not in layout.scored  # the full run is scored on everything


def test_comparisons_test_each_ablated_run_against_its_full_run_on_its_task() -> None:
    assert ablation_table.comparisons(ablation.TABLES["table8"], MODELS[:1]) == [
        ("resformer_sequential-cls_only", "resformer_sequential", ("Acc",)),
        ("resformer_sequential-seg_only", "resformer_sequential", ("JI", "DSC")),
    ]
    assert ablation_table.comparisons(ablation.TABLES["table9"], MODELS[1:]) == [
        ("resformer_parallel-no_dfe", "resformer_parallel", ("JI", "DSC")),
    ]


# --- the command on fake prediction files, and its audit -------------------------------------

SKILL = {  # (segmentation, classification) skill per run
    "resformer_sequential": (0.9, 0.9),
    "resformer_sequential-cls_only": (0.0, 0.6),
    "resformer_sequential-seg_only": (0.7, 0.0),
    "resformer_sequential-no_dfe": (0.5, 0.9),
    "resformer_parallel": (0.8, 0.8),
    "resformer_parallel-cls_only": (0.0, 0.8),
    "resformer_parallel-seg_only": (0.8, 0.0),
    "resformer_parallel-no_dfe": (0.8, 0.8),
}


def _prediction_file(directory: Path, run: str, seed: int) -> None:
    seg_skill, cls_skill = SKILL[run]
    labels = np.random.default_rng(0).integers(0, 3, N_CASES)
    rng = np.random.default_rng([list(SKILL).index(run), seed])
    logits = rng.normal(size=(N_CASES, 3))
    logits[np.arange(N_CASES), labels] += 5 * cls_skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gt = np.random.default_rng(1).integers(40, 90, N_CASES)
    tp = (gt * rng.uniform(0.9 * seg_skill, seg_skill, N_CASES)).astype(int)
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"case{i:03d}" for i in range(N_CASES)])
    frame.insert(1, "label", labels)
    frame["pred_label"] = probs.argmax(axis=1)
    fp = rng.integers(0, 5, N_CASES)
    frame["seg_tp"], frame["seg_fp"], frame["seg_fn"] = tp, fp, gt - tp
    frame["native_tp"], frame["native_fp"], frame["native_fn"] = tp, fp, gt - tp
    frame["nsd"], frame["hd95"] = 100 * tp / np.maximum(gt, 1), 10 * (1 - tp / np.maximum(gt, 1))
    model, _, switch = run.partition("-")
    meta = {
        "model": run, "ablation": switch or None, "seed": seed, "eval_set": "isic2017_test",
        "dataset": "isic2017", "class_names": CLASSES, "run_id": f"id-{run}-{seed}",
        "checkpoint": f"gone/{run}/seed{seed}/best.pt", "checkpoint_sha256": "c" * 64,
        "split_sha256": file_sha256(Path("data/splits/isic2017.json")), "data_sha256": "d" * 64,
        "git_commit": "abc1234", "git_dirty": False, "subset": "test",
        "selection_subset": "val", "config_sha256": "f" * 64, "profile": "demo",
        "tracking_uri": "sqlite:///mlflow.db", "nsd_tolerance": 2.0,
    }  # fmt: skip
    write_prediction_file(directory / run / f"seed{seed}.parquet", frame, meta)


@pytest.fixture
def ablation_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake predictions of the full and ablated runs, params and split, in a project folder."""
    monkeypatch.chdir(tmp_path)
    Path("data/splits").mkdir(parents=True)
    split = {"dataset": "isic2017", "policy": "Official parts.", "seed": 0, "cases_sha256": "x"}
    Path("data/splits/isic2017.json").write_text(json.dumps(split | dict.fromkeys(SUBSETS, [])))
    params = _params(dataset="isic2017", seeds=list(SEEDS))
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for run in SKILL:
        directory = "results/ablations/predictions" if "-" in run else "results/predictions"
        for seed in SEEDS:
            _prediction_file(Path(directory) / "isic2017_test", run, seed)
    return tmp_path


def _render(table: str) -> Path:
    parser = argparse.ArgumentParser()
    ablation_table_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        ["ablation-table", "--table", table, "--predictions", "results/predictions/isic2017_test",
         "--ablations", "results/ablations/predictions/isic2017_test", "--params", "params.yaml",
         "--split", "data/splits/isic2017.json", "--alpha", "0.05", "--n-boot", "200",
         "--stats", f"results/ablations/stats/{table}.parquet",
         "--out", f"results/tables/{table}.tex"]
    )  # fmt: skip
    assert args.func(args) == 0
    return Path(f"results/tables/{table}.tex")


def _audit(tex: Path) -> audit.AuditReport:
    return audit.audit_table(tex, lambda uri, run_id: "FINISHED")


def test_table8_renders_blanks_bold_and_daggers(ablation_outputs: Path) -> None:
    rows = table_tex.parse_table(_render("table8").read_text())
    cls_only = rows["ResFormer - Sequential: Cls. only"]
    seg_only = rows["ResFormer - Sequential: Seg. only"]
    both = rows["ResFormer - Sequential: Both"]
    assert cls_only[:2] == ["--", "--"] and seg_only[2:] == ["--", "--", "--"]
    assert all(cell.startswith(r"\textbf{") for cell in both)  # the best run everywhere
    assert both[0].endswith("}") and tables.MARK not in both[0]  # the reference is not tested
    assert seg_only[0].endswith(tables.MARK)  # 0.7 vs 0.9 skill: significant at 0.05
    parallel = rows["ResFormer - Parallel: Seg. only"]
    assert tables.MARK not in parallel[0]  # same skill as its full run
    stats = pd.read_parquet("results/ablations/stats/table8.parquet")
    assert len(stats) == 2 * 3 and set(stats["reference"]) == set(MODELS)


def test_table9_has_segmentation_columns_only(ablation_outputs: Path) -> None:
    tex = _render("table9").read_text()
    assert r"\begin{tabular}{lcc}" in tex and "Classification" not in tex
    rows = table_tex.parse_table(tex)
    assert set(rows) == {
        "ResFormer - Sequential: w/o DFE",
        "ResFormer - Sequential: w/ DFE",
        "ResFormer - Parallel: w/o DFE",
        "ResFormer - Parallel: w/ DFE",
    }
    assert rows["ResFormer - Sequential: w/o DFE"][0].endswith(tables.MARK)


def test_audit_rederives_the_ablation_tables_and_catches_an_edit(ablation_outputs: Path) -> None:
    for table in ("table8", "table9"):
        report = _audit(_render(table))
        assert audit.passed(report.findings), audit.format_report(report.tex, report.findings)
    tex = Path("results/tables/table8.tex")
    lines = tex.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("ResFormer - Parallel: Cls."))
    cells = lines[row].split(" & ")
    cells[3] = "99.9"  # the Acc column
    lines[row] = " & ".join(cells)
    tex.write_text("\n".join(lines))
    failing = [f for f in _audit(tex).findings if f.status == audit.MISMATCH]
    assert [(f.model, f.metric) for f in failing] == [("resformer_parallel-cls_only", "Acc")]


def test_audit_catches_a_swapped_ablation_prediction_file(ablation_outputs: Path) -> None:
    tex = _render("table9")
    full = Path("results/predictions/isic2017_test/resformer_sequential/seed0.parquet")
    ablated = (
        "results/ablations/predictions/isic2017_test/resformer_sequential-no_dfe/seed0.parquet"
    )
    Path(ablated).write_bytes(full.read_bytes())
    failing = [f for f in _audit(tex).findings if f.status == audit.MISMATCH]
    assert any("changed since the table was built" in f.message for f in failing)
    assert not audit.passed(failing)


def test_missing_ablation_runs_are_named(ablation_outputs: Path) -> None:
    Path(
        "results/ablations/predictions/isic2017_test/resformer_parallel-no_dfe/seed1.parquet"
    ).unlink()
    with pytest.raises(UserError, match="resformer_parallel-no_dfe/seed1.parquet"):
        _render("table9")


def test_ablation_tables_compile_with_pdflatex(ablation_outputs: Path, pdflatex_compile) -> None:
    body = _render("table8").read_text() + "\n" + _render("table9").read_text()
    assert pdflatex_compile(body) == ""


def test_a_run_record_without_its_ablation_is_refused(tmp_path: Path) -> None:
    from medmtl.commands.evaluate import RUN_KEYS, read_run

    record = dict.fromkeys(RUN_KEYS, "x")
    del record["ablation"]  # as written before runs had names
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="run.json: no ablation .*re-train"):
        read_run(tmp_path)
