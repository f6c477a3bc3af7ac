"""How models are named and ordered for people: the paper's row labels and row order."""

from collections.abc import Iterable

# Registry name -> row label, in row order: the six methods of the paper's Table 4, then others.
DISPLAY_NAMES = {
    "he2020": "He et al.",
    "gende2022": "Gende et al.",
    "hervella2022": "Hervella et al.",
    "tang2023": "Tang et al.",
    "resformer_sequential": "ResFormer - Sequential",
    "resformer_parallel": "ResFormer - Parallel",
    "resunet": "Residual U-Net",
    # the Res-MTNet and MTI-Net experiments (issue 14): baselines first, the proposed last
    "shared_encoder": "Shared encoder",
    "shared_encoder_seg": "Shared encoder + seg. head",
    "res_mtnet": "Res-MTNet",
    "mtinet_no_mdief": "MTI-Net w/o MdIEF",
    "mtinet_no_tdd": "MTI-Net w/o TDD",
    "mtinet": "MTI-Net",
}


def model_order(models: Iterable[str]) -> list[str]:
    """Models in the paper's row order, unknown names after them, alphabetically."""
    known = list(DISPLAY_NAMES)
    return sorted(models, key=lambda m: (known.index(m) if m in known else len(known), m))
