"""Each known dataset's class names in label-index order; no reader import, so the params checks
(`medmtl.pipeline.external`) can use them without loading the readers."""

DATASET_CLASSES: dict[str, tuple[str, ...]] = {
    "isic2017": ("nevus", "melanoma", "seborrheic_keratosis"),
    "synthetic": ("nevus", "melanoma", "seborrheic_keratosis"),  # written in the ISIC layout
    "busi": ("benign", "malignant", "normal"),
    "ph2": ("common_nevus", "atypical_nevus", "melanoma"),
    "udiat_b": ("benign", "malignant"),
    "dynamic": ("benign", "malignant"),  # multi-phase studies (medmtl.data.dynamic)
}
