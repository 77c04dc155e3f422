"""Prediction: the fold-ensemble predictor and submission CSVs."""
