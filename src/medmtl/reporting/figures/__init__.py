"""The report's figures (`medmtl figures`, issue "a report a researcher would show reviewers").

Each module draws one figure from arrays and frames, computes no metric (the numbers come from
`medmtl.evaluation.metrics` and the statistics files) and imports no torch; `common` holds the
deterministic PNG writer and the provenance footer every figure carries.
"""
