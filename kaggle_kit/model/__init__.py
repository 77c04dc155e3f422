"""The model: backbone registry, the offline EfficientNet-Lite family, the classifier, hardware strategy."""

__all__ = []
