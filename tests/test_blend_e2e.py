"""A blend end to end: two tiny real runs trained, blended, predicted, served and submitted through the
official ``kaggle`` client to the local server, which scores it like any submission."""
from __future__ import annotations

import io

import pytest
from kaggle_helpers import SLUG, TRUTH, project, server, server_root  # noqa: F401  (fixtures)

TINY = {"backbone": "simple_cnn", "weights": "none", "head_epochs": 2, "batch_size": 4, "folds": 2}


def test_two_trained_runs_blend_predict_serve_and_submit(server, project, monkeypatch):
    from kaggle_kit import BlendRecord, best_run, blend, fetch, list_runs, load_run, predict, status, submit, train
    from kaggle_kit.prediction.predictor import load_predictor
    from kaggle_kit.tools.serve import close_app, create_app
    from kaggle_helpers import png

    monkeypatch.chdir(project.root)
    fetch(SLUG)
    small = train(SLUG, image_size=16, progress=False, **TINY)
    large = train(SLUG, image_size=24, progress=False, **TINY)
    mixed = blend(SLUG, [small.run_id, large.run_id], method="equal", space="linear")
    assert isinstance(mixed, BlendRecord) and mixed.weights == [0.5, 0.5]
    assert mixed.members == [small.run_id, large.run_id] and mixed.cv is not None
    assert isinstance(load_run(mixed.run_id, competition=SLUG), BlendRecord)
    assert mixed.run_id in {r.run_id for r in list_runs(SLUG)}
    assert best_run(SLUG).run_id in {small.run_id, large.run_id, mixed.run_id}

    csv = predict(mixed, progress=False)
    assert csv.name == f"{mixed.run_id}.csv" and len(csv.read_text().splitlines()) == 1 + len(TRUTH)

    predictor = load_predictor(mixed)
    assert predictor.image_size == 24 and len(predictor.models) == 4        # 2 runs x 2 folds
    app = create_app(predictor, top_k=2)
    try:
        answer = app.test_client().post("/predict", data=png((200, 30, 30), size=12)).json
    finally:
        close_app(app)
    assert answer["run_id"] == mixed.run_id and len(answer["predictions"]) == 2
    assert sum(p["probability"] for p in answer["predictions"]) == pytest.approx(1.0, abs=1e-4)

    sent = submit(mixed, message="a blend")
    report = status(SLUG, wait=True, timeout=60)
    mine = [row for row in report.submissions if row.info.ref == sent.ref]
    assert mine and mine[0].info.status == "complete" and mine[0].info.public_score is not None
    assert mine[0].run_id == mixed.run_id                                  # recorded in blend.json
    assert load_run(mixed.run_id, competition=SLUG).submissions[0]["ref"] == sent.ref
