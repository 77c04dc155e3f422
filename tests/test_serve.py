"""`kaggle-kit serve`: a real server process on a free port, a real trained toy run, real HTTP calls."""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from kaggle_kit.cli import main
from kaggle_kit.data.images import decode_rgb
from kaggle_kit.data.resize import resize
from kaggle_kit.errors import KitError
from kaggle_kit.project import Project
from kaggle_kit.training.runs import RunRecord
from kaggle_kit.tools.batching import Batching
from kaggle_kit.tools.serve import close_app, create_app, serve

CLASSES = ("red", "green", "blue")
MAX_BYTES = 16384
WINDOW_MS = 50   # wide, so that requests sent together reliably share a batch on a busy machine
RED = np.full((40, 40, 3), (230, 20, 20), np.uint8)  # a clearly red picture, bigger than the training ones
PLUGIN = '''from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder
COMPETITION = Competition(slug="toy", classes=("red", "green", "blue"), metric="accuracy",
    train=ClassFolders(), test=TestFolder(), submission=Submission(labels="name"),
    defaults={"backbone": "simple_cnn", "weights": "none", "image_size": 16, "head_epochs": 4, "batch_size": 16})
'''


def coloured(channel: int, side: int = 24, seed: int = 0) -> np.ndarray:
    """An RGB image whose ``channel`` is bright and the others dark: its colour is its class."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 60, (side, side, 3)).astype(np.uint8)
    rgb[..., channel] = rng.integers(180, 256, (side, side))
    return rgb


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


@dataclass
class Toy:
    root: Path
    run: RunRecord


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Toy:
    """A project with a `toy` plugin, colour-coded training images, and a 2-fold run trained on them."""
    from kaggle_kit.training.trainer import train

    root = tmp_path_factory.mktemp("serve")
    (root / "competitions").mkdir()
    (root / "competitions" / "toy.py").write_text(PLUGIN)
    for c, name in enumerate(CLASSES):
        folder = root / "data" / "toy" / "train" / name
        folder.mkdir(parents=True)
        for i in range(12):
            (folder / f"{i}.png").write_bytes(png(coloured(c, seed=100 * c + i)))
    (root / "data" / "toy" / "test").mkdir()
    project = Project(root)
    comp = project.competition("toy")
    run = train(project, comp, comp.config(overrides={"folds": 2}))
    assert run.status == "complete" and len(run.folds) == 2
    return Toy(root, run)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    run: RunRecord

    def post(self, path: str = "/predict", **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kw)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=60)


@pytest.fixture(scope="module")
def server(toy: Toy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`kaggle-kit serve toy --run <id> --port 0` as a subprocess; its URL is read from its first line."""
    script = Path(sys.executable).with_name("kaggle-kit")
    assert script.is_file(), f"{script}: the console script is not installed"
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    env = {**os.environ, "KAGGLE_KIT_HOME": str(toy.root), "PYTHONUNBUFFERED": "1"}
    with log.open("w") as err:  # SIGINT as the default: a shell may start pytest with it ignored
        process = subprocess.Popen([str(script), "serve", "toy", "--run", toy.run.run_id, "--port", "0",
                                    "--max-bytes", str(MAX_BYTES), "--batch-window", str(WINDOW_MS)],
                                   cwd=toy.root, env=env,
                                   stdout=subprocess.PIPE, stderr=err, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=180)
    except queue.Empty:
        first = ""
    found = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
    try:
        assert found, f"no URL in {first!r}; stderr: {log.read_text()[-2000:]}"
        assert toy.run.run_id in first and f"batching up to 32 requests within {WINDOW_MS} ms" in first
        yield Server(found.group(1), process, toy.run)
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        assert process.wait(timeout=30) == 0
        reader.join(timeout=30)  # stdout is at its end: every line is queued
        assert list(lines.queue)[-1].strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_a_red_image_is_red_with_sorted_probabilities_summing_to_one(server: Server) -> None:
    answer = server.post(files={"photo": ("red.png", png(RED), "image/png")})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    labels = [p["class"] for p in body["predictions"]]
    probs = [p["probability"] for p in body["predictions"]]
    assert labels[0] == "red"
    assert sorted(labels) == sorted(CLASSES)  # default top-k 3 = every class of the toy
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert body["tta"] == chosen_tta(server.run)  # the policy the run chose, as `predict` uses


def chosen_tta(run: RunRecord) -> str:
    from kaggle_kit.prediction.predictor import resolve_tta

    return resolve_tta(run, None, "hflip").name


def test_raw_body_k_and_tta_options(server: Server) -> None:
    image = png(RED)
    as_form = server.post(files={"x": ("red.png", image)}, data={"top_k": "1", "tta": "no"}).json()
    raw = server.post("/predict?k=1&tta=0", data=image, headers={"Content-Type": "image/png"}).json()
    raw_untyped = server.post("/predict?k=1&tta=false", data=image).json()  # curl's --data-binary default type

    assert as_form == raw == raw_untyped
    assert raw["tta"] == "none" and len(raw["predictions"]) == 1 and raw["predictions"][0]["class"] == "red"
    capped = server.post("/predict?k=50", data=image).json()
    assert len(capped["predictions"]) == len(CLASSES)


def test_health_and_info_describe_the_run(server: Server, toy: Toy) -> None:
    health = server.get("/health")
    info = server.get("/info").json()

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert info == {"competition": "toy", "run_id": toy.run.run_id, "classes": list(CLASSES), "cv": toy.run.cv,
                    "metric": "accuracy", "direction": "max", "backbone": "simple_cnn", "image_size": 16,
                    "resize": "stretch", "folds": 2, "top_k": 3, "tta": chosen_tta(toy.run),
                    "calibration": {"used": False, "temperature": 1.0, "floor": 0.0}, "max_bytes": MAX_BYTES,
                    "batch_window_ms": WINDOW_MS, "max_batch": 32}


@pytest.mark.parametrize("request_kw, status, message", [
    ({"data": b""}, 400, "empty request"),
    ({"files": {"file": ("notes.txt", b"not an image, just text\n", "text/plain")}}, 400, "not a usable image"),
    ({"files": {"file": ("cut.png", png(coloured(0))[:60], "image/png")}}, 400, "truncated PNG"),
    ({"data": np.random.default_rng(1).bytes(MAX_BYTES + 1000)}, 413, f"limit is {MAX_BYTES} bytes"),
    ({"files": {"big": ("big.png", np.random.default_rng(2).bytes(MAX_BYTES + 1000))}}, 413, "too large"),
    ({"params": {"k": "two"}, "data": png(coloured(0))}, 400, "k must be a positive integer"),
    ({"params": {"tta": "maybe"}, "data": png(coloured(0))}, 400, "tta must be"),
    ({"params": {"tta": "d8"}, "data": png(coloured(0))}, 400, "symmetry 'hflip' does not allow"),
], ids=["empty", "text-file", "truncated", "oversized-raw", "oversized-upload", "bad-k", "bad-tta", "tta-not-allowed"])
def test_refused_requests_get_a_json_4xx_and_the_server_keeps_running(server: Server, request_kw: dict,
                                                                       status: int, message: str) -> None:
    answer = server.post(**request_kw)

    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/json"
    assert message in answer.json()["error"]
    assert server.process.poll() is None
    assert server.get("/health").status_code == 200
    assert server.post(data=png(coloured(0))).status_code == 200


def test_an_image_declaring_a_huge_size_gets_413_at_once(server: Server, header_bomb) -> None:
    for request_kw in ({"data": header_bomb()}, {"files": {"f": ("bomb.png", header_bomb(), "image/png")}}):
        answer = server.post(**request_kw)

        assert answer.status_code == 413
        assert answer.headers["Content-Type"] == "application/json"
        assert "image too large: its header declares 40000 x 40000 pixels" in answer.json()["error"]
    assert server.post(data=png(coloured(0))).status_code == 200


def test_unknown_routes_and_methods_answer_json(server: Server) -> None:
    missing, wrong_method = server.get("/nope"), server.get("/predict")

    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.json() == {"error": "Not Found: GET /nope"}
    assert wrong_method.json() == {"error": "Method Not Allowed: GET /predict"}


@pytest.fixture(scope="module")
def predictor(toy: Toy):
    from kaggle_kit.prediction.predictor import Predictor

    return Predictor.from_run(toy.run)


def unbatched(predictor, data: bytes, tta: str | bool | None = None) -> dict[str, float]:
    """The probabilities of one image predicted alone, in this process: the reference for the service."""
    x = resize(decode_rgb(data), predictor.image_size, predictor.resize)
    return dict(zip(predictor.classes, predictor.predict_batch(x[None], tta=tta)[0]))


def probabilities(answer: requests.Response) -> dict[str, float]:
    assert answer.status_code == 200, answer.text
    return {p["class"]: p["probability"] for p in answer.json()["predictions"]}


def assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert got.keys() == want.keys()
    assert all(abs(got[c] - want[c]) <= 1e-6 for c in want), (got, want)


def test_concurrent_requests_share_model_calls_and_match_unbatched_predictions(server: Server,
                                                                               predictor) -> None:
    images = [png(coloured(i % 3, side=32, seed=50 + i)) for i in range(6)]
    want = [unbatched(predictor, img) for img in images]
    before = server.get("/stats").json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: (i % 6, server.post(data=images[i % 6])), range(32)))

    for i, answer in answers:
        assert_same(probabilities(answer), want[i])
    after = server.get("/stats").json()
    requests_made = after["requests"] - before["requests"]
    calls_made = after["model_calls"] - before["model_calls"]
    assert requests_made == 32
    assert calls_made < requests_made and after["largest_batch"] > 1
    assert after["batch_window_ms"] == WINDOW_MS and after["pending"] == 0


def test_a_bad_image_in_a_batch_gets_its_own_4xx_and_the_others_succeed(server: Server, predictor,
                                                                         header_bomb) -> None:
    good = [png(coloured(c, side=32, seed=70 + c)) for c in range(3)]
    bad = {"truncated": (png(coloured(0))[:60], 400, "truncated PNG"),
           "text": (b"not an image, just text\n", 400, "not a usable image"),
           "bomb": (header_bomb(), 413, "image too large")}
    sent = [("good", i, good[i % 3]) for i in range(12)] + [(name, 0, body) for name, (body, _, _) in bad.items()]
    sent = sent[::2] + sent[1::2]  # the bad ones among the good

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda item: (item[0], item[1], server.post(data=item[2])), sent))

    for name, i, answer in answers:
        if name == "good":
            assert_same(probabilities(answer), unbatched(predictor, good[i % 3]))
        else:
            _, status, message = bad[name]
            assert answer.status_code == status and message in answer.json()["error"]


def test_a_request_names_a_tta_policy_and_gets_that_average(server: Server, predictor) -> None:
    image = png(coloured(1, side=32, seed=7))

    flip = server.post("/predict?tta=flip", data=image).json()
    on = server.post("/predict?tta=1", data=image).json()

    assert flip["tta"] == "flip" and on["tta"] == (chosen_tta(server.run) if chosen_tta(server.run) != "none" else "flip")
    assert_same({p["class"]: p["probability"] for p in flip["predictions"]}, unbatched(predictor, image, tta="flip"))
    assert_same({p["class"]: p["probability"] for p in server.post("/predict?tta=none", data=image).json()["predictions"]},
                unbatched(predictor, image, tta="none"))


def test_a_log_loss_competition_serves_the_calibrated_probabilities(toy: Toy, predictor) -> None:
    import dataclasses

    from kaggle_kit.prediction.calibrate import Calibration
    from kaggle_kit.prediction.predictor import calibration_for

    comp = dataclasses.replace(Project(toy.root).competition("toy"), metric="log_loss")
    fitted = calibration_for(toy.run, comp)
    assert not np.isnan(fitted.raw_log_loss)   # fitted on the run's oof.csv (the identity's is NaN)
    soft = Calibration(temperature=3.0, floor=0.01, used=True)
    image = png(coloured(0, side=32, seed=3))
    want = dict(zip(predictor.classes, soft.apply(np.array([list(unbatched(predictor, image, tta="none").values())]))[0]))
    app = create_app(predictor, tta="none", batching=Batching.off(), calibration=soft)
    client = app.test_client()

    got = {p["class"]: p["probability"] for p in client.post("/predict", data=image).json["predictions"]}

    assert_same(got, want)
    assert max(got.values()) < max(unbatched(predictor, image, tta="none").values())   # softened
    assert client.get("/info").json["calibration"] == {"used": True, "temperature": 3.0, "floor": 0.01}
    close_app(app)


def test_without_batching_every_request_is_its_own_model_call(toy: Toy, predictor) -> None:
    app = create_app(predictor, tta=None, batching=Batching.off())
    client = app.test_client()
    images = [png(coloured(c, side=32, seed=90 + c)) for c in range(3)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda i: (i % 3, client.post("/predict", data=images[i % 3])), range(9)))

    for i, answer in answers:
        got = {p["class"]: p["probability"] for p in answer.json["predictions"]}
        assert_same(got, unbatched(predictor, images[i]))
    assert client.get("/stats").json == {"requests": 9, "model_calls": 9, "largest_batch": 1, "pending": 0,
                                         "batch_window_ms": 0, "max_batch": 1}
    assert client.get("/info").json["batch_window_ms"] == 0
    close_app(app)


def test_an_unknown_run_is_a_one_line_error(toy: Toy, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(toy.root))

    assert main(["serve", "toy", "--run", "no-such-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no-such-run" in err and "\n" not in err


def test_a_busy_port_is_a_kit_error(toy: Toy) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(KitError, match=rf"127\.0\.0\.1:{port}: cannot listen .*pick another --port"):
            serve(toy.run, Project(toy.root).competition("toy"), port=port)


def test_the_cli_loads_without_flask() -> None:
    code = ("import sys; from kaggle_kit.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('flask', 'waitress', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
