"""kaggle-kit: a workflow kit for Kaggle image-classification competitions.

The package is a Python API; ``kaggle_kit.cli`` is a thin layer over it. Data flows one way:
competition spec -> manifest -> pipeline -> trainer -> run record -> predictor -> submission -> Kaggle.
"""
__version__ = "0.1.0"
