from .siamese import SiameseNet, build_model

__all__ = ["SiameseNet", "build_model"]
