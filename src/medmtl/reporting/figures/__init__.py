"""The report's figures (`medmtl figures`, issue "a report a researcher would show reviewers").

Each module draws one figure from arrays and frames and imports no torch; the numbers come from
`medmtl.evaluation.metrics` and the statistics files, except the seed ensembles' confusion
matrices and ROC curves, which `classification` computes with scikit-learn; `common` holds the
deterministic PNG writer and the provenance footer every figure carries.
"""
