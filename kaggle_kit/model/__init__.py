"""The model: backbone registry, the offline EfficientNet-Lite family, the classifier, hardware strategy."""
