"""What a reader sees and how it is checked: table cells (`tables`), LaTeX and its parser
(`table_tex`), the paper's values beside ours (`vs_paper`), the ablation and external tables,
cell-level provenance (`provenance`) and the audit that re-derives every cell (`audit*`)."""
