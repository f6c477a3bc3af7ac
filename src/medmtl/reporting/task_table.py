"""The caption of an experiment's main table when its runs have other tasks than Table 4's
segmentation + classification: Res-MTNet (classification + regression, arXiv:2502.19692) and
MTI-Net (segmentation + regression + classification, arXiv:2511.20793) against their baselines
(issue 14). Cells, columns and tests are Table 4's machinery (`tables.task_layout`,
`analysis.stats.tested_metrics`); this module says what they mean."""

from __future__ import annotations

from medmtl.evaluation.predictions import PredictionFile
from medmtl.reporting.table_tex import marks_sentence, two_class_note
from medmtl.reporting.tables import TASK_METRICS, Cell, display_name, escape_latex, seed_count

TITLE = "Multi-task performance"
RECIPE = (
    "Every method was trained with the same recipe (AdamW, lr and epochs of the profile; loss "
    "0.25 weighted cross-entropy, + 1.0 Dice for a segmenting model, + 1.0 smooth-L1 of the "
    "standardised targets for a regressing one{adversarial})."
)
ADVERSARIAL = ", + MTI-Net's adversarial term (trainer.adversarial\\_weight)"


def caption(
    files: list[PredictionFile],
    cells: list[Cell],
    reference: str,
    alpha: float,
    policy: str,
    seed_note: str,
) -> str:
    """Setting (dataset, eval set, subset, seeds, profile, split), recipe, what each column
    group measures (the regression targets named, with what they are), highlights, marks."""
    meta = files[0].meta
    tasks = {t for f in files for t in f.tasks}
    adversarial = (
        ADVERSARIAL if any(f.model in ("mtinet", "mtinet_no_mdief") for f in files) else ""
    )
    as_table4 = ", ".join(m for t in ("seg", "cls") if t in tasks for m in TASK_METRICS[t])
    regressing = [f for f in files if "reg" in f.tasks]
    targets = ""
    if regressing:
        names = ", ".join(escape_latex(n) for n in regressing[0].meta["regression"]["names"])
        targets = (
            f"Regression targets: {names} ({escape_latex(regressing[0].meta['targets_note'])}); "
            "MAE and RMSE in units of each target's training-split sd, averaged over the "
            "targets; $R^2$ and Pearson's $r$ averaged over the targets. "
        )
    return (
        f"{TITLE} on {escape_latex(meta['dataset'])} (eval set "
        f"{escape_latex(meta['eval_set'])}, subset {escape_latex(meta['subset'])}), mean $\\pm$ "
        f"sd over {seed_count(cells)} seeds; profile {escape_latex(meta['profile'])}; split: "
        f"{escape_latex(policy)} {RECIPE.format(adversarial=adversarial)} {as_table4} as in "
        f"Table 4{two_class_note(files)}. {targets}"
        "--: the model has no such task. Best in \\textcolor{red}{red}, second best in "
        "\\textcolor{blue}{blue} (lowest for MAE, RMSE). "
        + marks_sentence(
            display_name(reference),
            alpha,
            seed_note,
            "JI, DSC: per-image values; Acc: per-image share of right one-vs-rest decisions; "
            "MAE: per-case absolute errors in sd units, averaged over the targets; Sen, Spe, "
            "RMSE, $R^2$, $r$ untested",
        )
    )
