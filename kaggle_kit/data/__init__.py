"""Reading the data: images, manifests, on-disk records and caches, tf.data pipelines, near-duplicate hashes."""

__all__ = []
