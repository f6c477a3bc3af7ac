"""medmtl: a reproducible pipeline for multi-task (segmentation + classification) imaging."""

__version__ = "0.1.0"
