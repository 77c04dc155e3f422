"""The Kaggle loop over the official client: fetch, submit, status."""

__all__ = []
