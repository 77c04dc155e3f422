"""Prediction: the fold-ensemble predictor and submission CSVs."""

__all__: list[str] = []
