"""Multi-task models: every registered model maps (B, 3, H, W) images to an `MTLOutput`."""

from medmtl.models.registry import MTLOutput, create_model, list_models, register_model

__all__ = ["MTLOutput", "create_model", "list_models", "register_model"]
