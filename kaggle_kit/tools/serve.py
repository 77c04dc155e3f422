"""The prediction service: a run's fold ensemble behind HTTP (``kaggle-kit serve``).

Routes (every answer is JSON; errors are ``{"error": "<one line>"}`` with a 4xx status):

- ``POST /predict``: an image as a multipart upload (any field name) or as the raw request body;
  optional ``k`` / ``top_k`` (query or form field) and ``tta``: a TTA policy the competition's symmetry
  allows (``none``, ``flip``, ``d8``, ...; :data:`kaggle_kit.symmetry.TTA_POLICIES`), or ``1``/``0``
  (``true``/``false``): the service's policy, or none. Answers ``{"predictions": [{"class": ...,
  "probability": ...}, ...], "run_id": ..., "tta": <policy>}``, most probable first.
- ``GET /health``: ``{"status": "ok", ...}`` once the models are loaded.
- ``GET /info``: the competition, run id, classes, CV score and metric, backbone, image size, folds,
  the TTA policy and the calibration the answers use.
- ``GET /stats``: images predicted, model calls made and the largest batch since the start.

By default the service answers as ``predict`` does: with the TTA policy the run chose on its
out-of-fold predictions (a blend: each member's own, ``"tta": null``), and, when the competition's
metric scores probabilities, with the temperature and floor fitted on the run's out-of-fold
predictions (:mod:`kaggle_kit.prediction.calibrate`), so a served probability is the one a
submission would hold.

The models load once, before the server listens. Requests are decoded and resized in parallel on the
request threads. With batching on (the default, :class:`~kaggle_kit.tools.batching.Batching`), the images
of concurrent requests are collected for a few milliseconds and run as one model call by a single worker
thread (:class:`~kaggle_kit.tools.batching.Batcher`); with a window of 0 each request runs alone, the
calls taking turns behind one lock (Keras does not promise thread-safe calls).

Example (a notebook; the Flask test client needs no socket)::

    from kaggle_kit.project import Project
    from kaggle_kit.prediction.predictor import Predictor
    from kaggle_kit.training.runs import best_run
    project = Project.find(); comp = project.competition("cifar-10")
    app = create_app(Predictor.from_run(best_run(project, comp)), top_k=3)
    app.test_client().post("/predict", data=open("cat.png", "rb").read()).json
    # -> {'predictions': [{'class': 'cat', 'probability': 0.91}, ...], 'run_id': '...', 'tta': 'flip'}

"""
from __future__ import annotations

import errno
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kaggle_kit import events
from kaggle_kit.errors import KitError
from kaggle_kit.data.images import BadImage, ImageTooLarge, decode_rgb
from kaggle_kit.data.resize import resize
from kaggle_kit.prediction.calibrate import IDENTITY, Calibration
from kaggle_kit.tools.batching import Batcher, Batching, BatchStats, ShuttingDown

if TYPE_CHECKING:  # Flask and the predictor (TensorFlow) load only when a service starts
    from flask import Flask

    from kaggle_kit.competition import Competition
    from kaggle_kit.prediction.predictor import Predictor
    from kaggle_kit.training.runs import RunRecord

__all__ = ["serve", "create_app", "Classifier", "Ranked", "RequestError", "describe", "batching_info", "close_app", "parse_top_k",
           "parse_tta", "default_tta", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_TOP_K", "DEFAULT_MAX_BYTES", "DEFAULT_THREADS"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_TOP_K = 3
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_THREADS = 16   # request threads mostly wait for their batch: enough for batches to form
CLASSIFIER = "kaggle-kit classifier"   # the app's Classifier, in app.extensions
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

class RequestError(KitError):
    """A request the service refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Ranked:
    label: str
    probability: float

    def as_json(self) -> dict[str, Any]:
        return {"class": self.label, "probability": self.probability}


class Classifier:
    """Image bytes -> the top-k classes of a :class:`Predictor`; safe to call from many threads.
    ``batching`` on: concurrent images go through one :class:`Batcher`; :meth:`close` drains it.
    ``calibration`` is applied to every answer's probabilities (the identity by default)."""

    def __init__(self, predictor: "Predictor", batching: Batching = Batching(),
                 calibration: Calibration = IDENTITY) -> None:
        self.predictor = predictor
        self.batching = batching
        self.calibration = calibration
        self.stats = BatchStats()
        self._lock = threading.Lock()
        self._batcher = Batcher(self._predict, batching, self.stats) if batching.enabled else None

    def warm_up(self) -> None:
        """Calls on a blank image, so a broken model fails now and the first requests are not slow: one
        image, then two (TensorFlow traces the call for any batch size once it has seen two sizes)."""
        size = self.predictor.image_size
        blank = np.zeros((size, size, 3), np.uint8)
        with self._lock:
            for n in ((1, 2) if self._batcher is not None else (1,)):
                self._predict(np.stack([blank] * n), "none")

    def classify(self, data: bytes, *, k: int, tta: str | None) -> list[Ranked]:
        if not data:
            raise RequestError("empty request: send an image as a multipart upload or as the request body")
        try:
            image = decode_rgb(data)
        except ImageTooLarge as e:   # refused from its header alone, before any pixel is allocated
            raise RequestError(f"the upload is refused: {e}", status=413) from None
        except BadImage as e:
            raise RequestError(f"the upload is not a usable image: {e}") from None
        proba = self._proba(resize(image, self.predictor.image_size, self.predictor.resize), tta=tta)
        order = np.argsort(-proba, kind="stable")[:k]
        return [Ranked(self.predictor.classes[i], float(proba[i])) for i in order]

    def close(self) -> None:
        """Stop taking images; answer the ones already waiting for a batch."""
        if self._batcher is not None:
            self._batcher.close()

    def _predict(self, images: np.ndarray, tta: str | None) -> np.ndarray:
        return self.calibration.apply(self.predictor.predict_batch(images, tta=tta))

    def _proba(self, image: np.ndarray, *, tta: str | None) -> np.ndarray:
        if self._batcher is not None:
            try:
                return self._batcher.submit(image, tta=tta)
            except ShuttingDown as e:
                raise RequestError(str(e), status=503) from None
        with self._lock:
            proba = self._predict(image[None], tta)[0]
        self.stats.record(1)
        return proba

    def pending(self) -> int:
        return self._batcher.pending() if self._batcher is not None else 0


def describe(predictor: "Predictor", *, top_k: int, tta: str | None, max_bytes: int,
             batching: Batching = Batching(), calibration: Calibration = IDENTITY) -> dict[str, Any]:
    """What ``GET /info`` answers: the run behind the service and the service's defaults."""
    run = predictor.run
    return {"competition": run.slug, "run_id": run.run_id, "classes": list(predictor.classes),
            "cv": run.cv, "metric": run.metric, "direction": run.direction, "backbone": run.backbone,
            "image_size": predictor.image_size, "resize": predictor.resize, "folds": len(predictor.models),
            "top_k": top_k, "tta": tta, "calibration": {"used": calibration.used, "temperature": calibration.temperature,
                                                        "floor": calibration.floor},
            "max_bytes": max_bytes, **batching_info(batching)}


def batching_info(batching: Batching) -> dict[str, Any]:
    return {"batch_window_ms": batching.window_ms if batching.enabled else 0,
            "max_batch": batching.max_batch if batching.enabled else 1}


def parse_top_k(raw: str | None, default: int, n_classes: int) -> int:
    """``k`` from a request: a positive integer, capped at the number of classes."""
    if raw is None or raw == "":
        return min(default, n_classes)
    try:
        k = int(raw)
    except ValueError:
        raise RequestError(f"k must be a positive integer, not {raw!r}") from None
    if k < 1:
        raise RequestError(f"k must be a positive integer, not {raw!r}")
    return min(k, n_classes)


def default_tta(predictor: "Predictor", tta: str | bool | None) -> str | None:
    """The service's TTA policy, checked against the competition's symmetry: a policy name; True: the
    mirrors the symmetry allows; False: ``none``; None: the policy the run chose on its out-of-fold
    predictions (a blend: None, each member its own)."""
    from kaggle_kit.prediction.predictor import resolve_tta

    if tta is None and getattr(predictor, "members", None) is not None:
        return None
    return resolve_tta(predictor.run, tta, predictor.symmetry).name


def parse_tta(raw: str | None, default: str | None, predictor: "Predictor") -> str | None:
    """``tta`` from a request: a policy name the symmetry allows, or a flag (on: the service's policy,
    or the mirrors when that is ``none``; off: ``none``)."""
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in TRUE or value in FALSE:
        if value in FALSE:
            return "none"
        return default if default != "none" else default_tta(predictor, True)
    try:
        return default_tta(predictor, value)
    except KitError as e:
        raise RequestError(f"tta must be 1/0, true/false or a TTA policy: {e}") from None


def create_app(predictor: "Predictor", *, top_k: int = DEFAULT_TOP_K, max_bytes: int = DEFAULT_MAX_BYTES,
               tta: str | bool | None = None, batching: Batching = Batching(),
               calibration: Calibration = IDENTITY) -> "Flask":
    """A Flask app serving ``predictor`` (warmed up first); ``top_k`` and ``tta`` are the defaults a request
    can change (``tta``: a policy name, True for the mirrors the symmetry allows, False for none, None for
    the run's chosen policy), ``max_bytes`` the largest request body accepted (larger ones get 413),
    ``batching`` how concurrent requests share model calls, ``calibration`` what the probabilities go
    through. :func:`close_app` stops its batch worker when it is done."""
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException

    if top_k < 1:
        raise KitError(f"top-k must be at least 1, not {top_k}")
    if max_bytes < 1:
        raise KitError(f"max bytes must be at least 1, not {max_bytes}")
    tta = default_tta(predictor, tta)
    classifier = Classifier(predictor, batching, calibration)
    try:
        classifier.warm_up()
    except BaseException:
        classifier.close()
        raise
    info = describe(predictor, top_k=top_k, tta=tta, max_bytes=max_bytes, batching=batching, calibration=calibration)
    app = Flask("kaggle_kit.tools.serve")
    app.extensions[CLASSIFIER] = classifier
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.json.sort_keys = False

    def option(*names: str) -> str | None:
        """A request option from the query string, or from the form of a multipart upload."""
        sources = [request.args] + ([request.form] if request.mimetype == "multipart/form-data" else [])
        for source in sources:
            for name in names:
                if name in source:
                    return source[name]
        return None

    def upload() -> bytes:
        """The image: the first uploaded file of a multipart form, else the raw body (any content type)."""
        if request.mimetype == "multipart/form-data":
            first = next(iter(request.files.values()), None)
            return first.read() if first is not None else b""
        return request.get_data(cache=False)

    @app.post("/predict")
    def predict():
        data = upload()
        k = parse_top_k(option("k", "top_k"), top_k, len(predictor.classes))
        use_tta = parse_tta(option("tta"), tta, predictor)
        ranked = classifier.classify(data, k=k, tta=use_tta)
        return jsonify(predictions=[r.as_json() for r in ranked], run_id=predictor.run.run_id, tta=use_tta)

    @app.get("/health")
    def health():
        return jsonify(status="ok", run_id=predictor.run.run_id, folds=len(predictor.models))

    @app.get("/info")
    def describe_run():
        return jsonify(info)

    @app.get("/stats")
    def stats():
        return jsonify(**classifier.stats.snapshot(), pending=classifier.pending(), **batching_info(batching))

    @app.errorhandler(RequestError)
    def refused(e: RequestError):
        return jsonify(error=str(e)), e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            message = f"request body too large: the limit is {max_bytes} bytes"
        else:
            message = f"{e.name}: {request.method} {request.path}" if e.code in (404, 405) else e.name
        return jsonify(error=message), e.code

    @app.errorhandler(Exception)
    def crashed(e: Exception):
        app.logger.exception("prediction failed")
        return jsonify(error=f"internal error: {type(e).__name__}: {e}"), 500

    return app


def close_app(app: "Flask") -> None:
    """Stop the batch worker of an app from :func:`create_app`, after answering the images it holds."""
    app.extensions[CLASSIFIER].close()


def serve(run: "RunRecord", competition: "Competition", *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          top_k: int = DEFAULT_TOP_K, max_bytes: int = DEFAULT_MAX_BYTES, tta: str | bool | None = None,
          threads: int = DEFAULT_THREADS, batching: Batching = Batching(), calibrate: bool = True,
          report: events.Report = events.quiet) -> None:
    """Load ``run``'s fold models, listen on ``host:port`` (0 picks a free port) and serve until Ctrl-C,
    then return once the requests in progress are answered. ``tta`` None: the policy the run chose on its
    out-of-fold predictions (as ``predict``); ``calibrate``: the run's fitted calibration when the
    competition's metric scores probabilities. Reports :class:`~kaggle_kit.events.ServerReady` with the
    URL once listening."""
    from waitress import create_server

    from kaggle_kit.prediction.predictor import calibration_for, load_predictor

    if threads < 1:
        raise KitError(f"threads must be at least 1, not {threads}")
    predictor = load_predictor(run, competition.symmetries)   # a blend: its members' fold ensembles
    calibration = calibration_for(run, competition) if calibrate else IDENTITY
    tta = default_tta(predictor, tta)
    app = create_app(predictor, top_k=top_k, max_bytes=max_bytes, tta=tta, batching=batching, calibration=calibration)
    try:
        try:
            # waitress' own limit is only a backstop against absurd bodies: up to it, Flask answers a JSON 413
            server = create_server(app, host=host, port=port, threads=threads, ident="kaggle-kit",
                                   max_request_body_size=2 * max_bytes + 2**20)
        except OSError as e:
            hint = "; pick another --port" if e.errno == errno.EADDRINUSE else ""
            raise KitError(f"{host}:{port}: cannot listen ({e.strerror}){hint}") from None
        host_shown = f"[{host}]" if ":" in host else host
        shown = batching_info(batching)
        report(events.ServerReady(url=f"http://{host_shown}:{server.effective_port}", run_id=run.run_id,
                                  folds=len(predictor.models), tta=tta, calibrated=calibration.used,
                                  top_k=top_k, max_bytes=max_bytes,
                                  batch_window_ms=shown["batch_window_ms"], max_batch=shown["max_batch"]))
        try:
            server.run()   # on Ctrl-C waitress lets its request threads finish, with the batcher still running
        finally:
            server.close()
    finally:
        close_app(app)   # then the batcher answers whatever is still queued
