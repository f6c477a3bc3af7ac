"""Datasets: download and checksums, official-layout readers, synthetic data, preprocessing
into fixed-size arrays, and split files. Knows no model (docs/architecture.md)."""
