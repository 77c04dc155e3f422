"""Training throughput three ways, side by side, on one model and the same real images (issue #5).

(a) the seeds' way: ``ImageDataGenerator.flow_from_directory`` (PIL decode + resize every epoch,
    class sub-folders: a symlink tree is built for a labels-CSV competition), then ``fit``;
(b) kaggle-kit: ``build_manifest`` + ``Cache.images`` + ``pipeline.image_dataset``; the first epoch
    starts from an empty cache (checking, decoding and caching the images are part of it), later
    epochs read the cache;
(c) the same model fed uint8 tensors already in memory (the upper limit of this machine).

An epoch is ``--images`` images (a stratified sample), one ``fit`` epoch of batch ``--batch``;
each way is measured ``--repeats`` times, interleaved, and the median is reported. The same
augmentation runs in all three when ``--augment seed`` (ImageDataGenerator's parameters in (a),
the ``seed`` preset's Keras layers in (b) and (c)).

Then the feature cache: one forward epoch of the frozen backbone on the images (what phase 1
costs without the cache) vs one head epoch on cached features, and a second
``features.backbone_features`` call (a re-run with the same backbone) that must find the cache.

``--augment-cost`` instead measures the CPU cost per image of each augmentation (the kit's presets,
each layer of ``seed``, ImageDataGenerator) on random images.

The last line is ``key=value`` fields for scripts. Results and commands: bench/RESULTS.md. Example:
    python bench/throughput.py --data .cache/scratch/data --competition cifar-10 --images 1280
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SEED_AUGMENT = dict(rotation_range=20, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                    zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="folder holding the unzipped <slug>/ folders")
    p.add_argument("--competition", help="a plugin in the repository's competitions/")
    p.add_argument("--augment-cost", action="store_true",
                   help="only measure the CPU cost per image of each augmentation (random images, no data)")
    p.add_argument("--work", type=Path, default=Path(".cache/scratch/work"), help="scratch folder (caches, trees)")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="imagenet")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--unfreeze", type=int, default=30, help="top backbone layers trainable (0: frozen)")
    p.add_argument("--images", type=int, default=2560, help="images per epoch (a stratified sample)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--augment", choices=["none", "seed"], default="none")
    p.add_argument("--no-features", action="store_true", help="skip the feature-cache measurement")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.augment_cost:
        return augment_cost(args)
    if args.data is None or args.competition is None:
        raise SystemExit("--data and --competition are needed (or --augment-cost)")
    import keras
    import numpy as np
    import tensorflow as tf

    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.data.cache import Cache
    from kaggle_kit.data.manifest import build_manifest
    from kaggle_kit.model.classifier import build_model, set_trainable
    from kaggle_kit.data.augment import make_augment
    from kaggle_kit.data.pipeline import image_dataset
    from kaggle_kit.project import Project

    comp = Project(REPO).competition(args.competition)
    data_root = args.data / comp.slug
    work = args.work / f"{comp.slug}-{args.images}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    n_classes = len(comp.classes)
    load0 = os.getloadavg()[0]

    # the sample every way trains on: the kit's stratified sample, as a class-folder tree for (a)
    listing = build_manifest(comp, data_root, "train", cache_dir=work / "listing", limit=args.images, seed=0)
    n = len(listing)
    tree = work / "tree"
    for i, (path, label) in enumerate(zip(listing.paths, listing.labels)):
        folder = tree / comp.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}{Path(path).suffix.lower()}").symlink_to(Path(path).resolve())
    log(f"{comp.slug}: {n} images, {args.backbone} ({args.weights}) at {args.size}px, top {args.unfreeze} "
        f"layers trainable, batch {args.batch}, augment {args.augment}, {os.cpu_count()} CPU(s)")

    model = build_model(get_backbone(args.backbone), n_classes=n_classes, image_size=args.size,
                        weights=args.weights, dropout=0.2, cache_dir=args.work / "weights")
    set_trainable(model, args.unfreeze)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")

    def augment(seed: int):
        return make_augment(args.augment if args.augment == "none" else "seed", seed)

    def epoch(ds, steps: int | None = None) -> None:
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)

    def seed_way(r: int, steps: int | None = None) -> None:
        gen = tf.keras.preprocessing.image.ImageDataGenerator(**(SEED_AUGMENT if args.augment == "seed" else {}))
        flow = gen.flow_from_directory(str(tree), target_size=(args.size, args.size), batch_size=args.batch,
                                       class_mode="categorical", classes=list(comp.classes), shuffle=True,
                                       seed=r)
        assert flow.samples == n, (flow.samples, n)
        epoch(flow, steps or len(flow))

    def kit_dataset(images, labels, r: int):
        return image_dataset(images, np.arange(len(labels)), labels, n_classes=n_classes, batch_size=args.batch,
                             shuffle=True, seed=r, augment=augment(r))

    def kit_first(r: int):
        """From an empty cache: check the images, decode and cache them, train an epoch."""
        cache_dir = work / f"cache-{r}"
        manifest = build_manifest(comp, data_root, "train", cache_dir=cache_dir, limit=args.images, seed=0)
        images = Cache(cache_dir).images(manifest, args.size, "stretch")
        epoch(kit_dataset(images, manifest.labels, r))
        return images

    def in_memory(x, labels, r: int, steps: int | None = None) -> None:
        y = tf.one_hot(labels, n_classes)
        ds = tf.data.Dataset.range(len(labels)).shuffle(len(labels), seed=r).batch(args.batch)
        ds = ds.map(lambda i: (tf.cast(tf.gather(x, i), tf.float32), tf.gather(y, i)),
                    num_parallel_calls=tf.data.AUTOTUNE)
        aug = augment(r)
        if aug is not None:
            ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
        epoch(ds.prefetch(tf.data.AUTOTUNE), steps)

    # trace each input form's train step once, outside the measurements
    warm_images = Cache(work / "warm").images(listing, args.size, "stretch")
    x_memory = tf.constant(warm_images.read_all())    # (c)'s tensors, in memory before it starts
    seed_way(999, steps=2)
    epoch(kit_dataset(warm_images, listing.labels, 999), steps=2)
    in_memory(x_memory, listing.labels, 999, steps=2)

    ways = ("seed_way", "kit_first", "kit_cached", "in_memory")
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    images = None
    for r in range(args.repeats):
        steps = {"seed_way": lambda: seed_way(r), "kit_first": lambda: kit_first(r),
                 "kit_cached": lambda: epoch(kit_dataset(images, listing.labels, r + 100)),
                 "in_memory": lambda: in_memory(x_memory, listing.labels, r)}
        for way in ways:
            t, c = time.perf_counter(), time.process_time()
            out = steps[way]()
            wall[way].append(time.perf_counter() - t)
            cpu[way].append(time.process_time() - c)
            if way == "kit_first":
                images = out
        log(f"  repeat {r + 1}/{args.repeats} (load {os.getloadavg()[0]:.1f}): "
            + "  ".join(f"{k} {n / wall[k][-1]:.0f} img/s ({1000 * cpu[k][-1] / n:.1f} cpu-ms/img)" for k in ways))
        if r:
            shutil.rmtree(work / f"cache-{r - 1}", ignore_errors=True)
    ips = {k: n / median(v) for k, v in wall.items()}
    cpu_ms = {k: 1000 * median(v) / n for k, v in cpu.items()}
    fields = {"dataset": comp.slug, "model": f"{args.backbone}@{args.size}px/top{args.unfreeze}",
              "augment": args.augment, "images": n, "batch": args.batch, "repeats": args.repeats,
              **{f"{k}_ips": round(v, 1) for k, v in ips.items()},
              "b_over_a": round(ips["kit_cached"] / ips["seed_way"], 2),
              "b_over_c": round(ips["kit_cached"] / ips["in_memory"], 3),
              "first_over_a": round(ips["kit_first"] / ips["seed_way"], 2),
              **{f"{k}_cpu_ms": round(v, 2) for k, v in cpu_ms.items()},
              "b_over_a_cpu": round(cpu_ms["seed_way"] / cpu_ms["kit_cached"], 2),
              "b_over_c_cpu": round(cpu_ms["in_memory"] / cpu_ms["kit_cached"], 3)}
    if not args.no_features:
        fields.update(feature_cache(args, comp, images, listing.labels, work))
    fields["load_avg"] = f"{load0:.1f}->{os.getloadavg()[0]:.1f}"
    log(json.dumps({"wall_s": wall, "cpu_s": cpu}))
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


def feature_cache(args: argparse.Namespace, comp, images, labels, work: Path) -> dict:
    """A frozen-backbone image epoch vs a head epoch on cached features; a re-run finds the cache."""
    import keras
    import numpy as np

    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.data.cache import Cache
    from kaggle_kit.data.manifest import build_manifest
    from kaggle_kit.model.classifier import build_head, build_model, set_trainable
    from kaggle_kit.data.pipeline import feature_dataset, image_dataset
    from kaggle_kit.project import Project
    from kaggle_kit.model.features import backbone_features

    n_classes = len(comp.classes)
    n = len(labels)
    idx = np.arange(n)
    frozen = build_model(get_backbone(args.backbone), n_classes=n_classes, image_size=args.size,
                         weights=args.weights, dropout=0.2, cache_dir=args.work / "weights")
    set_trainable(frozen, 0)
    frozen.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    frozen_times, frozen_cpu = [], []
    for r in range(args.repeats + 1):  # the first epoch traces the step: not counted
        ds = image_dataset(images, idx, labels, n_classes=n_classes, batch_size=args.batch, shuffle=True, seed=r)
        t, c = time.perf_counter(), time.process_time()
        frozen.fit(ds, epochs=1, verbose=0)
        frozen_times.append(time.perf_counter() - t)
        frozen_cpu.append(time.process_time() - c)

    project = Project(work / "project")   # its own empty cache: the first call extracts, the second finds
    config = comp.config(None, {"backbone": args.backbone, "weights": args.weights, "image_size": args.size})
    manifest = build_manifest(comp, args.data / comp.slug, "train", cache_dir=project.cache, limit=args.images,
                              seed=0)
    cached_images = Cache(project.cache).images(manifest, args.size, "stretch")
    t = time.perf_counter()
    features = backbone_features(project, config, manifest, cached_images)
    extract_s = time.perf_counter() - t
    t = time.perf_counter()
    again = backbone_features(project, config, manifest, cached_images)
    rerun_s = time.perf_counter() - t
    reused = again.path == features.path and len(Cache(project.cache).entries()) == 2

    head = build_head(features.shape[0], n_classes, 0.2)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    head_times, head_cpu = [], []
    for r in range(args.repeats + 1):
        ds = feature_dataset(features, idx, labels, n_classes=n_classes, batch_size=args.batch, shuffle=True,
                             seed=r)
        t, c = time.perf_counter(), time.process_time()
        head.fit(ds, epochs=1, verbose=0)
        head_times.append(time.perf_counter() - t)
        head_cpu.append(time.process_time() - c)
    frozen_s, head_s = median(frozen_times[1:]), median(head_times[1:])
    log(json.dumps({"frozen_epoch_s": frozen_times, "frozen_cpu_s": frozen_cpu, "head_epoch_s": head_times,
                    "head_cpu_s": head_cpu, "extract_s": extract_s, "rerun_s": rerun_s}))
    return {"frozen_epoch_ips": round(n / frozen_s, 1), "extract_ips": round(n / extract_s, 1),
            "head_epoch_ips": round(n / head_s, 1), "head_over_forward": round(head_s / frozen_s, 4),
            "head_over_forward_cpu": round(median(head_cpu[1:]) / median(frozen_cpu[1:]), 4),
            "features_reused": "yes" if reused else "no", "rerun_features_s": round(rerun_s, 3)}


def augment_cost(args: argparse.Namespace) -> int:
    """CPU-ms per image of the kit's presets, of each layer of the ``seed`` preset (one resampling
    pass each), and of ImageDataGenerator with the seeds' parameters, on ``--batch`` random images."""
    import numpy as np
    import tensorflow as tf

    from kaggle_kit.data.augment import make_augment

    x = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch, args.size, args.size, 3)).astype("float32"))
    ways = {f"kit_{name}": make_augment(name, 0) for name in ("seed", "light", "flip")}
    ways.update({f"layer_{type(layer).__name__}": layer for layer in make_augment("seed", 0).layers})
    calls = {k: tf.function(lambda a, f=f: f(a, training=True)) for k, f in ways.items()}
    gen = tf.keras.preprocessing.image.ImageDataGenerator(**SEED_AUGMENT)
    xn = x.numpy()
    calls["imagedatagenerator_seed"] = lambda a: np.stack([gen.random_transform(img) for img in xn])
    for call in calls.values():
        call(x)  # trace
    cost: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.repeats):
        for k, call in calls.items():
            c = time.process_time()
            call(x)
            cost[k].append(1000 * (time.process_time() - c) / args.batch)
    fields = {"augment_cost": f"{args.size}px", "batch": args.batch, "repeats": args.repeats,
              **{f"{k}_cpu_ms": round(median(v), 2) for k, v in cost.items()}, "load_avg": round(os.getloadavg()[0], 1)}
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
