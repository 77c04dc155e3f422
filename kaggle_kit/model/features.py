"""Backbone outputs of every image, computed once and cached on disk (shared by training and prediction).

The pooled features of a frozen pretrained backbone train a head almost for free; the activations at
a cut (``finetune_from``) let phase 2 train only the layers above it. Both are keyed by everything
that changes them (images, backbone, weights, size, layer, flip) and read back from the cache.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kaggle_kit import interrupt
from kaggle_kit.config import TrainConfig
from kaggle_kit.data.cache import Cache, cache_key
from kaggle_kit.data.manifest import Manifest
from kaggle_kit.events import Progress, Report, Stage, quiet
from kaggle_kit.project import Project

__all__ = ["pretrained", "weights_id", "backbone_features", "backbone_outputs", "features_from_activations",
           "cached_outputs", "plain", "mirrored", "view_pass", "view_batch"]

Pass = Callable[[Any, np.ndarray], np.ndarray]   # (network, float32 batch) -> its outputs for that batch


def plain(net: Any, x: np.ndarray) -> np.ndarray:
    """A pass over the images as they are."""
    return net.predict_on_batch(x)


def mirrored(net: Any, x: np.ndarray) -> np.ndarray:
    """A pass over the horizontally mirrored images."""
    return net.predict_on_batch(x[:, :, ::-1])

def pretrained(config: TrainConfig) -> bool:
    """Whether the run's backbone starts from trained weights (its entry's fact and ``weights``)."""
    from kaggle_kit.model.backbones import get_backbone

    return get_backbone(config.backbone).uses_pretrained(config.weights)


def weights_id(weights: str) -> str:
    path = Path(weights)
    if weights in ("imagenet", "none") or not path.is_file():
        return weights
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def backbone_features(project: Project, config: TrainConfig, manifest: Manifest, images, report: Report = quiet):
    """Pooled features of every image through the frozen pretrained backbone, cached on disk."""
    return backbone_outputs(project, config, images, layer=None, flip=False, report=report)


def view_pass(key: str) -> Pass:
    """A pass over the images under view key ``key`` (a symmetry view, ``@zoom`` magnified about the
    centre: :func:`kaggle_kit.symmetry.split_key`)."""
    if key == "id":
        return plain
    if key == "hflip":
        return mirrored
    return lambda net, x: net.predict_on_batch(view_batch(key, x))


def view_batch(key: str, x: np.ndarray) -> np.ndarray:
    """A float32 batch under view key ``key`` (exact flips and turns; a zoom is one bilinear pass)."""
    from kaggle_kit.symmetry import apply_view, split_key

    view, zoom = split_key(key)
    x = np.ascontiguousarray(apply_view(view, np.asarray(x, np.float32)))
    if zoom != 1.0:
        from kaggle_kit.data.geometry import zoom_about_centre

        x = np.asarray(zoom_about_centre(x, zoom))
    return x


def backbone_outputs(project: Project, config: TrainConfig, images, *, layer: str | None, flip: bool = False,
                     views: Sequence[str] | None = None, report: Report = quiet):
    """Every image run once through the frozen pretrained backbone, up to ``layer`` (None: the pooled
    features), cached on disk, once per symmetry view of ``views`` (default ``("id",)``, or
    ``("id", "hflip")`` with ``flip``): view ``v``'s records are ``v*N .. (v+1)*N-1``."""
    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.model.classifier import partial_backbone

    views = tuple(views) if views is not None else (("id", "hflip") if flip else ("id",))
    legacy = views in (("id",), ("id", "hflip"))      # the key these two had before views existed
    extra = {} if legacy else {"views": ",".join(views)}
    flip = views == ("id", "hflip")
    backbone = get_backbone(config.backbone)
    file = {"file": backbone.fingerprint} if backbone.fingerprint else {}   # a model file: its contents count
    key = cache_key(v=1, images=images.path.name, backbone=backbone.name, weights=weights_id(config.weights),
                    size=config.image_size, preprocess=backbone.preprocess, layer=layer, flip=flip, **file, **extra)
    what = f"{backbone.short_name} features" if layer is None else f"{backbone.short_name} activations at {layer}"
    return cached_outputs(project, config, "features" if layer is None else "activations", key, what,
                          lambda model: partial_backbone(model, layer), images, len(images),
                          passes=tuple(view_pass(v) for v in views), batch=64,
                           meta={"n": len(images) * len(views), "views": list(views), "backbone": backbone.name,
                                 "size": config.image_size, "layer": layer}, report=report)


def features_from_activations(project: Project, config: TrainConfig, activations, n: int,
                              report: Report = quiet):
    """Pooled features of the first ``n`` cached activations (the unmirrored images), through the
    frozen backbone layers above ``config.finetune_from``; cached on disk like the activations."""
    from kaggle_kit.model.classifier import upper_backbone

    key = cache_key(v=1, activations=activations.path.name, layer=config.finetune_from, n=n)
    what = f"{config.backbone} features (via {config.finetune_from})"
    return cached_outputs(project, config, "features", key, what,
                          lambda model: upper_backbone(model, config.finetune_from),
                          activations, n, passes=(plain,), batch=256,
                           meta={"n": n, "backbone": config.backbone, "size": config.image_size,
                                 "via": config.finetune_from}, report=report)


def cached_outputs(project: Project, config: TrainConfig, kind: str, key: str, what: str, network: Callable,
                   source, n: int, *, passes: Sequence[Pass], batch: int, meta: dict, report: Report = quiet):
    """``network(pretrained classifier)`` run over records 0..n-1 of ``source`` once per pass (each
    pass's records follow the previous pass's: ``(plain, mirrored)`` gives the mirror images as records
    N..2N-1) as float16, read from or written to the cache as ``kind``/``key``; ``report`` hears a
    Stage naming ``what`` (``cached`` when read back) and the progress."""
    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.model.classifier import build_model

    cache = Cache(project.cache)
    found = cache.find(kind, key)
    report(Stage(message=what if found is not None else f"computing {what} (cached for later runs)",
                 cached=found is not None))
    if found is not None:
        return found
    net = network(build_model(get_backbone(config.backbone), n_classes=2, image_size=config.image_size,
                              weights=config.weights, dropout=0.0, cache_dir=project.cache))

    def produce():
        for run_pass in passes:
            for start in range(0, n, batch):
                interrupt.check()
                x = source.read(range(start, min(start + batch, n))).astype(np.float32)
                yield np.asarray(run_pass(net, x), dtype=np.float16)  # eager calls peak ~3x the memory
                report(Progress(task=kind, done=min(start + batch, n), total=n))

    with interrupt.deferred():    # Ctrl-C is raised between batches, never inside the network
        return cache.get_or_build(kind, key, tuple(int(d) for d in net.output.shape[1:]), np.float16, produce, meta)
