"""Where the Hydra config groups live and which options each offers; no Hydra import, so the
Snakefile's params checks (`medmtl.pipeline.params`, `medmtl.pipeline.ablation`) stay fast."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).parent.parent / "conf"


def group_options(group: str) -> list[str]:
    """Names available in one Hydra config group (`conf/<group>/*.yaml`)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
