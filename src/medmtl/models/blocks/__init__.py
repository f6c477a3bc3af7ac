"""Building blocks shared by the models: ResNet, Swin and ViT blocks, attention gates, DFE."""
