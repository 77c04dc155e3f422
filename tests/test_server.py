"""The local Kaggle-compatible server, driven by the unmodified official client (the `kaggle` CLI in a
subprocess, with a hermetic HOME) and by plain HTTP where the client cannot reach (ranges, admin)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.request
import zipfile

import numpy as np
import pytest
import requests

from kaggle_helpers import (KEY, SLUG, TRUTH, USER, accuracy, client, csv_text, names, project,  # noqa: F401
                            run_cli, server, server_root, sleeps)
from kaggle_kit.errors import KitError
from kaggle_kit.kaggle.client import KaggleClient, RetryPolicy
from kaggle_local import LocalKaggleServer, ServerError, client_env
from kaggle_local.scoring import Scorer

PRED = {"1": "cat", "2": "dog", "3": "cat", "4": "cat", "5": "dog", "6": "dog"}   # 3 of 6 right


def public_ids(server) -> list[str]:
    scorer = server.ledger.competitions[SLUG].scorer
    return [i for i, pub in zip(scorer.ids, scorer.public) if pub]


def test_listens_on_loopback_only(server):
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_official_cli_downloads_submits_and_reads_scores(server, server_root, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    got = run_cli(["kaggle", "competitions", "download", SLUG, "-p", str(work)], work)
    assert got.returncode == 0, got.stderr
    assert (work / f"{SLUG}.zip").read_bytes() == (server_root / SLUG / f"{SLUG}.zip").read_bytes()

    sub = work / "sub.csv"
    sub.write_text(csv_text(PRED))
    sent = run_cli(["kaggle", "competitions", "submit", SLUG, "-f", str(sub), "-m", "first try"], work)
    assert sent.returncode == 0 and "Successfully submitted" in sent.stdout
    assert "4 submissions remaining today." in sent.stdout

    listed = run_cli(["kaggle", "competitions", "submissions", SLUG, "--csv"], work)
    [row] = list(csv.DictReader(io.StringIO(listed.stdout)))
    private = [i for i in TRUTH if i not in public_ids(server)]
    assert (row["description"], row["fileName"], row["status"]) == ("first try", "sub.csv", "SubmissionStatus.COMPLETE")
    assert row["publicScore"] == f"{accuracy(PRED, public_ids(server)):.5f}"
    assert row["privateScore"] == f"{accuracy(PRED, private):.5f}"

    board = run_cli(["kaggle", "competitions", "leaderboard", SLUG, "-s", "--csv"], work)
    teams = {r["teamName"]: r["score"] for r in csv.DictReader(io.StringIO(board.stdout))}
    assert teams[USER] == row["publicScore"]
    sample = {i: "cat" for i in TRUTH}
    assert teams["Sample Submission Benchmark"] == f"{accuracy(sample, public_ids(server)):.5f}"
    assert names(server).count("CreateSubmission") == 1


def test_get_submission_through_the_clients_own_sdk_object(server, client, tmp_path):
    from kagglesdk.competitions.types.competition_api_service import ApiGetSubmissionRequest

    sub = tmp_path / "sub.csv"
    sub.write_text(csv_text(PRED))
    ref = client.submit(SLUG, sub, "one").ref
    request = ApiGetSubmissionRequest()
    request.ref = ref
    with client.api().build_kaggle_client() as kaggle:
        got = kaggle.competitions.competition_api_client.get_submission(request)
    assert (got.ref, got.description, got.public_score) == (ref, "one", f"{accuracy(PRED, public_ids(server)):.5f}")


def test_listing_single_file_download_and_leaderboard_zip(server, client, tmp_path):
    api = client.api()                       # the official KaggleApi, in this process
    assert [c.ref for c in api.competitions_list(search="tiny").competitions] == [
        f"https://www.kaggle.com/competitions/{SLUG}"]
    assert api.competitions_list(search="nothing-like-it").competitions == []
    files = api.competition_list_files(SLUG, page_size=3)
    assert [f.name for f in files.files] == ["train/1.png", "train/2.png", "train/3.png"] and files.next_page_token
    api.competition_download_file(SLUG, "trainLabels.csv", path=str(tmp_path), quiet=True)
    assert (tmp_path / "trainLabels.csv").read_text().startswith("id,label\n1,cat")
    api.competition_leaderboard_download(SLUG, str(tmp_path / "lb"))
    with zipfile.ZipFile(tmp_path / "lb" / f"{SLUG}.zip") as zf:
        assert zf.read(f"{SLUG}-publicleaderboard.csv").decode().startswith("Rank,TeamId,TeamName")


def test_wrong_key_is_401_and_unknown_competition_404_and_rules_403(server, client, tmp_path, monkeypatch):
    from requests import HTTPError

    server.configure(SLUG, rules_accepted=False)
    with pytest.raises(HTTPError, match="accept this competition's rules") as refused:
        client.api().competition_download_files(SLUG, path=str(tmp_path / "dl"), quiet=True)
    assert refused.value.response.status_code == 403 and not (tmp_path / "dl").exists()

    missing = run_cli(["kaggle", "competitions", "download", "no-such-comp", "-p", str(tmp_path)], tmp_path)
    assert missing.returncode == 1 and "Competition 'no-such-comp' not found." in missing.stderr
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    denied = run_cli(["kaggle", "competitions", "download", SLUG, "-p", str(tmp_path)], tmp_path)
    assert denied.returncode == 1
    assert [r["status"] for r in server.requests()] == [403, 404, 401]


def test_bearer_token_auth(server_root, tmp_path):
    with LocalKaggleServer(root=server_root, users={USER: KEY}, tokens={"tok-123": USER}) as srv:
        env = srv.environ(tmp_path / "home")
        del env["KAGGLE_USERNAME"], env["KAGGLE_KEY"]
        env["KAGGLE_API_TOKEN"] = "tok-123"
        ok = subprocess.run([sys.executable, "-m", "kaggle.cli", "competitions", "submissions", SLUG],
                            env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert names(srv)[:2] == ["IntrospectToken", "ListSubmissions"]
        assert [r["status"] for r in srv.requests()][:2] == [200, 200]


def test_malformed_submission_is_scored_as_error_with_a_reason(server, client, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,species\n1,cat\n")
    ref = client.submit(SLUG, bad, "oops")
    [info] = client.submissions(SLUG)
    assert (info.ref, info.status, info.public_score) == (ref.ref, "error", None)
    assert info.error == "bad.csv: columns are ['id', 'species'], expected ['id', 'label']"

    short = tmp_path / "short.csv"
    short.write_text(csv_text({"1": "cat", "2": "dog"}))
    client.submit(SLUG, short, "too short")
    assert client.submissions(SLUG)[0].error == "short.csv: 4 id(s) missing, e.g. 3, 4, 5, 6"


def test_competition_without_solution_is_complete_without_score(server_root):
    from kaggle_helpers import add_competition, tiny_members

    add_competition(server_root, "no-answers", tiny_members())
    with LocalKaggleServer(root=server_root, users={USER: KEY}) as srv:
        body = csv_text(TRUTH).encode()
        up = srv.ledger.start_upload("no-answers", USER, "s.csv", len(body))
        srv.ledger.receive_upload(up.token, body)
        record = srv.ledger.create_submission("no-answers", USER, up.token, "")
        assert (record.status(), record.public, record.private, record.error) == ("COMPLETE", None, None, "")


def test_daily_limit_is_enforced(server, client, tmp_path):
    server.configure(SLUG, daily_limit=1)
    sub = tmp_path / "sub.csv"
    sub.write_text(csv_text(PRED))
    client.submit(SLUG, sub, "one")
    assert client.limits(SLUG).allowed_now == 0
    with pytest.raises(KitError, match=f"^{SLUG}: no submissions left today \\(1 made\\)"):
        client.submit(SLUG, sub, "two")            # the kit checks first: no upload
    assert "upload" not in names(server)[-2:]
    official = run_cli(["kaggle", "competitions", "submit", SLUG, "-f", str(sub), "-m", "three"], tmp_path)
    assert official.returncode == 1 and "daily Submission allowance (1)" in official.stderr
    assert len(server.ledger.submissions(SLUG, USER)) == 1


def test_blob_ranges_signatures_and_if_range(server, server_root):
    data = (server_root / SLUG / f"{SLUG}.zip").read_bytes()
    url = server.httpd.blob_url(f"/_blobs/{SLUG}/{SLUG}.zip")
    full = requests.get(url, timeout=10)
    assert full.status_code == 200 and full.content == data
    assert full.headers["Accept-Ranges"] == "bytes" and int(full.headers["Content-Length"]) == len(data)
    part = requests.get(url, headers={"Range": "bytes=10-"}, timeout=10)
    assert part.status_code == 206 and part.content == data[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    same = requests.get(url, headers={"Range": "bytes=10-", "If-Range": full.headers["ETag"]}, timeout=10)
    assert same.status_code == 206
    changed = requests.get(url, headers={"Range": "bytes=10-", "If-Range": '"other"'}, timeout=10)
    assert changed.status_code == 200 and changed.content == data
    assert requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=10).status_code == 416
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403


def test_server_cli_prints_port_and_takes_faults_over_http(server_root, tmp_path, monkeypatch):
    proc = subprocess.Popen([sys.executable, "-m", "kaggle_local", "--root", str(server_root), "--port", "0",
                             "--user", f"{USER}:{KEY}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        fault = {"method": "ListSubmissions", "status": 503, "message": "maintenance"}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/_admin/fault", data=json.dumps(fault).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        assert json.load(direct.open(request))["faults"][0]["status"] == 503
        for name, value in client_env(port, tmp_path / "home", USER, KEY).items():
            monkeypatch.setenv(name, value)
        one_try = KaggleClient(retry=RetryPolicy(attempts=1))
        with pytest.raises(KitError, match=r"Kaggle answered 503 \(maintenance\)"):
            one_try.submissions(SLUG)
        assert one_try.submissions(SLUG) == []
        clear = urllib.request.Request(f"http://127.0.0.1:{port}/_admin/fault", method="DELETE")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/_admin/fault", data=json.dumps(
            {"method": "ListSubmissions", "status": 500, "times": 3}).encode(), method="POST")
        assert len(json.load(direct.open(request))["faults"]) == 1
        assert json.load(direct.open(clear))["faults"] == []
        assert one_try.submissions(SLUG) == []
        log = json.load(direct.open(f"http://127.0.0.1:{port}/_admin/requests"))["requests"]
        assert [r["status"] for r in log if r["name"] == "ListSubmissions"] == [503, 200, 200]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_state_dir_keeps_submissions_across_restarts(server_root, tmp_path):
    state = tmp_path / "state"
    options = dict(root=server_root, users={USER: KEY}, state_dir=state)
    body = csv_text(PRED).encode()
    first = LocalKaggleServer(**options)
    up = first.ledger.start_upload(SLUG, USER, "sub.csv", len(body))
    first.ledger.receive_upload(up.token, body)
    ref = first.ledger.create_submission(SLUG, USER, up.token, "kept").ref
    first.close()
    second = LocalKaggleServer(**options)
    try:
        [kept] = second.ledger.submissions(SLUG, USER)
        assert (kept.ref, kept.description, kept.public) == (ref, "kept", accuracy(PRED, public_ids(second)))
        up = second.ledger.start_upload(SLUG, USER, "sub.csv", len(body))
        second.ledger.receive_upload(up.token, body)
        assert second.ledger.create_submission(SLUG, USER, up.token, "next").ref == ref + 1
    finally:
        second.close()


def test_scorer_uses_usage_column_and_infers_log_loss_without_facts(tmp_path):
    solution = tmp_path / "solution.csv"
    solution.write_text("id,label,Usage\n1,cat,Public\n2,dog,Private\n3,dog,Public\n4,cat,Ignored\n")
    sub = tmp_path / "sub.csv"
    sub.write_text("id,label\n1,cat\n2,cat\n3,cat\n4,cat\n")
    scores = Scorer.load("pets", solution).score(sub)
    assert (scores.public, scores.private) == (0.5, 0.0)

    proba = tmp_path / "proba.csv"
    proba.write_text("image,a,b\nx,1,0\ny,0,1\n")
    scorer = Scorer.load("probs", proba)
    guess = tmp_path / "guess.csv"
    guess.write_text("image,a,b\nx,0.8,0.2\ny,0.4,0.6\n")
    assert scorer.metric.name == "log_loss"
    assert scorer.score(guess).overall == pytest.approx(-np.mean(np.log([0.8, 0.6])))


def test_seeded_split_is_deterministic_and_covers_every_row(tmp_path):
    solution = tmp_path / "solution.csv"
    solution.write_text("id,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(101)))
    one, two = Scorer.load("x", solution), Scorer.load("x", solution)
    assert (one.public == two.public).all() and one.public.sum() == 51
    assert (one.public ^ one.private).all()


def test_bad_solution_is_refused_at_start(tmp_path):
    from kaggle_helpers import add_competition, tiny_members

    add_competition(tmp_path, "broken", tiny_members(), solution="id,label\n1,cat\n")
    with pytest.raises(ServerError, match="fewer than two classes"):
        LocalKaggleServer(root=tmp_path)
