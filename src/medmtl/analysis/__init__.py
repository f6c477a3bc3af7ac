"""Statistics on prediction files: paired tests against the reference at the per-image and
per-run levels (`stats`, `run_level`), their files (`stats_file`) and ranking stability
(`ranking`). Reads prediction files only; no torch."""
