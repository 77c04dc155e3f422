"""KaggleClient, submit_run, status and the `submit`/`status` commands, end to end: the unmodified
official client (in-process KaggleApi, and the kaggle-kit CLI in a subprocess) against the local
server on 127.0.0.1, with each error injected in turn."""
from __future__ import annotations

import json
import re

import pytest

from kaggle_helpers import (KEY, SLUG, TRUTH, USER, accuracy, client, csv_text, names, project,  # noqa: F401
                            run_cli, server, server_root, sleeps)
from kaggle_kit.errors import KaggleError, SubmissionError
from kaggle_kit.kaggle.client import KaggleClient, RetryPolicy
from kaggle_kit.training.runs import RunRecord
from kaggle_kit.kaggle.status import competition_status, wait_for_scores
from kaggle_kit.kaggle.submit import submit_run

PRED = {"1": "cat", "2": "dog", "3": "dog", "4": "cat", "5": "dog", "6": "dog"}   # 5 of 6 right


def public_ids(server) -> list[str]:
    scorer = server.ledger.competitions[SLUG].scorer
    return [i for i, pub in zip(scorer.ids, scorer.public) if pub]


@pytest.fixture
def sub_csv(tmp_path):
    path = tmp_path / "sub.csv"
    path.write_text(csv_text(PRED))
    return path


@pytest.fixture
def run(project) -> RunRecord:
    rec = RunRecord.create(project, SLUG, backbone="tiny_cnn")
    rec.status, rec.cv, rec.metric, rec.config = "complete", 0.8125, "accuracy", {"backbone": "tiny_cnn"}
    rec.save()
    return rec


def uploads(server) -> list[str]:
    return [n for n in names(server) if n in ("StartSubmissionUpload", "upload", "CreateSubmission")]


# -- the happy path ---------------------------------------------------------------------------------
def test_submit_then_read_scores_leaderboard_limits_and_rank(client, server, sub_csv):
    assert client.competitions("tiny") == [SLUG]
    ref = client.submit(SLUG, sub_csv, "five of six")
    assert ref.ref == 50_000_001 and "Successfully submitted" in ref.message
    [info] = client.submissions(SLUG)
    private = [i for i in TRUTH if i not in public_ids(server)]
    assert (info.ref, info.status, info.description, info.file_name) == (ref.ref, "complete", "five of six", "sub.csv")
    assert info.public_score == pytest.approx(accuracy(PRED, public_ids(server)), abs=1e-5)
    assert info.private_score == pytest.approx(accuracy(PRED, private), abs=1e-5)
    limits = client.limits(SLUG)
    assert (limits.today, limits.total, limits.allowed_now) == (1, 1, 4)
    board = client.leaderboard(SLUG, top=5)
    assert [row.rank for row in board] == list(range(1, len(board) + 1))
    mine = next(row for row in board if row.team_name == USER)
    assert mine.score == pytest.approx(info.public_score)
    info_ = client.competition(SLUG)
    assert info_.user_rank == mine.rank and info_.team_count == 1 and info_.user_has_entered


def test_dropped_upload_is_resent_by_the_client_and_nothing_is_lost(client, server, sub_csv):
    server.inject("upload", drop=True)
    ref = client.submit(SLUG, sub_csv, "after a drop")
    assert [r["status"] for r in server.requests() if r["name"] == "upload"] == ["dropped", 200]
    [record] = server.ledger.submissions(SLUG, USER)
    assert (record.ref, record.total_bytes, record.error) == (ref.ref, sub_csv.stat().st_size, "")


def test_a_submission_created_but_answered_with_a_5xx_is_not_made_twice(client, server, sub_csv, sleeps):
    server.inject("CreateSubmission", status=503, after=True)
    ref = client.submit(SLUG, sub_csv, "answer lost")
    [record] = server.ledger.submissions(SLUG, USER)
    assert ref.ref == record.ref and record.description == "answer lost"
    assert names(server).count("CreateSubmission") == 1 and sleeps == [1.0]
    assert "found among your submissions" in ref.message


def test_a_5xx_before_the_submission_was_created_is_retried(client, server, sub_csv, sleeps):
    client.submit(SLUG, sub_csv, "same message")                    # an older one, with the same message
    server.inject("CreateSubmission", status=503)
    ref = client.submit(SLUG, sub_csv, "same message")
    records = server.ledger.submissions(SLUG, USER)
    assert len(records) == 2 and ref.ref == max(r.ref for r in records)
    assert names(server).count("CreateSubmission") == 3 and "Successfully submitted" in ref.message


# -- errors, one at a time ----------------------------------------------------------------------------
def test_401_explains_credentials_and_never_shows_the_key(server, sleeps, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "wrong-key-7f3a9")
    with pytest.raises(KaggleError) as err:
        KaggleClient(retry=RetryPolicy(sleep=sleeps.append)).submissions(SLUG)
    message = str(err.value)
    assert "\n" not in message and "wrong-key-7f3a9" not in message and KEY not in message
    assert f"Kaggle rejected the credentials for user {USER!r} (401)" in message
    for hint in ("~/.kaggle/access_token (chmod 600)", "KAGGLE_API_TOKEN", "kaggle.json", "KAGGLE_USERNAME and KAGGLE_KEY",
                 "https://www.kaggle.com/settings/api", "kaggle auth login"):
        assert hint in message
    assert sleeps == []


def test_no_credentials_at_all_is_one_line_not_an_exit(server, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(KaggleError, match=r"^no Kaggle credentials found: create an API token at "
                       r"https://www\.kaggle\.com/settings/api and save it in ~/\.kaggle/access_token .* or set KAGGLE_API_TOKEN; or put a legacy key in "
                       r".*kaggle\.json or set KAGGLE_USERNAME and KAGGLE_KEY; or run `kaggle auth login`$"):
        KaggleClient().submissions(SLUG)
    assert server.requests() == []


def test_403_gives_the_rules_url(client, server, tmp_path):
    server.configure(SLUG, rules_accepted=False)
    with pytest.raises(KaggleError) as err:
        client.download(SLUG, tmp_path / "dl")
    assert str(err.value).endswith(f"accept the competition's rules at https://www.kaggle.com/competitions/{SLUG}/rules")
    assert "403" in str(err.value) and not (tmp_path / "dl" / f"{SLUG}.zip").exists()


def test_misspelt_slug_is_caught_before_any_upload_with_the_closest_names(client, server, sub_csv):
    with pytest.raises(KaggleError, match=r"no competition 'tiny-pet' on Kaggle \(404\); did you mean tiny-pets\?"):
        client.submit("tiny-pet", sub_csv, "typo")
    assert uploads(server) == []


def test_429_waits_as_long_as_retry_after_says(client, server, sleeps):
    server.inject("ListSubmissions", status=429, retry_after=7, times=2)
    assert client.submissions(SLUG) == []
    assert sleeps == [7.0, 7.0]
    assert [r["status"] for r in server.requests()] == [429, 429, 200]


def test_5xx_backs_off_exponentially_then_gives_up_in_one_line(client, server, sleeps):
    server.inject("ListSubmissions", status=500, times=10)
    with pytest.raises(KaggleError) as err:
        client.submissions(SLUG)
    assert str(err.value) == (f"list submissions to {SLUG}: Kaggle answered 500 (Injected fault: HTTP 500.) "
                              "4 time(s); try again later")
    assert sleeps == [1.0, 2.0, 4.0]


def test_back_off_is_capped_and_a_too_long_retry_after_fails_at_once(server, sleeps):
    capped = KaggleClient(retry=RetryPolicy(attempts=5, base=1.0, cap=3.0, sleep=sleeps.append))
    server.inject("GetLeaderboard", status=503, times=4)
    capped.leaderboard(SLUG)
    assert sleeps == [1.0, 2.0, 3.0, 3.0]
    sleeps.clear()
    server.inject("GetLeaderboard", status=429, retry_after=3600)
    with pytest.raises(KaggleError, match="Kaggle asks to wait 3600 s"):
        capped.leaderboard(SLUG)
    assert sleeps == []


@pytest.mark.parametrize("status", [403, 503])
def test_failed_upload_is_an_error_although_the_client_returns_normally(client, server, sub_csv, status):
    server.inject("upload", status=status)
    with pytest.raises(KaggleError, match=rf"^upload of {sub_csv} to {SLUG} failed \(.*\); nothing was submitted$"):
        client.submit(SLUG, sub_csv, "refused upload")
    assert "CreateSubmission" not in names(server)
    assert server.ledger.submissions(SLUG, USER) == []


def test_no_network_is_one_clear_line(server, monkeypatch):
    port = server.port
    server.close()
    with pytest.raises(KaggleError) as err:
        KaggleClient().submissions(SLUG)
    assert str(err.value) == (f"list submissions to {SLUG}: cannot reach Kaggle through the proxy "
                              f"http://127.0.0.1:{port} (connection refused); check the proxy settings")
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("http_proxy")
    with pytest.raises(KaggleError, match=r": cannot reach Kaggle \(connection refused\); check the network"):
        KaggleClient().limits(SLUG)


# -- submit_run: build/validate, upload, record ------------------------------------------------------------
def test_submit_run_uploads_and_records_the_ref_in_the_run(project, client, server, run, sub_csv):
    result = submit_run(project, project.competition(SLUG), run, client=client, csv=sub_csv)
    assert result.message == f"{run.run_id} tiny_cnn CV accuracy 0.8125"
    [recorded] = RunRecord.load(run.path).submissions
    assert (recorded["ref"], recorded["file"], recorded["message"]) == (result.ref, str(sub_csv), result.message)
    assert recorded["date"]
    assert server.ledger.submissions(SLUG, USER)[0].description == result.message


def test_submit_run_dry_run_and_invalid_csv_upload_nothing(project, client, server, run, sub_csv, tmp_path):
    dry = submit_run(project, project.competition(SLUG), run, client=client, csv=sub_csv, dry_run=True, message="m")
    assert dry.dry_run and dry.file == sub_csv and dry.message == "m"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n1,cat\n2,hamster\n")
    with pytest.raises(SubmissionError, match="invalid label"):
        submit_run(project, project.competition(SLUG), run, client=client, csv=bad)
    assert server.requests() == [] and RunRecord.load(run.path).submissions == []


@pytest.mark.parametrize("method, fault, expected", [
    ("StartSubmissionUpload", {"status": 401}, "Kaggle rejected the credentials"),
    ("upload", {"status": 403}, "failed (the upload was refused or broke off); nothing was submitted"),
    ("CreateSubmission", {"status": 500, "times": 9}, "Kaggle answered 500"),
])
def test_submit_run_failures_record_nothing_and_keep_the_csv(project, client, server, run, sub_csv,
                                                             method, fault, expected):
    before = sub_csv.read_bytes()
    server.inject(method, **fault)
    with pytest.raises(KaggleError, match=re.escape(expected)):
        submit_run(project, project.competition(SLUG), run, client=client, csv=sub_csv)
    assert RunRecord.load(run.path).submissions == []
    assert server.ledger.submissions(SLUG, USER) == []
    assert sub_csv.read_bytes() == before


# -- status -----------------------------------------------------------------------------------------------
def test_status_matches_submissions_to_runs(project, client, server, run, sub_csv):
    submit_run(project, project.competition(SLUG), run, client=client, csv=sub_csv)
    client.submit(SLUG, sub_csv, "by hand")
    report = competition_status(project, SLUG, client=client, top=3)
    default = f"{run.run_id} tiny_cnn CV accuracy 0.8125"
    assert [(r.info.description, r.run_id) for r in report.submissions] == [("by hand", None), (default, run.run_id)]
    assert report.limits.allowed_now == 3 and report.pending == 0
    assert report.my_rank == next(r.rank for r in report.leaderboard if r.team_name == USER)


def test_wait_for_scores_polls_until_scored_or_timeout(project, client, server, sub_csv):
    now = [1_000_000.0]
    server.ledger.clock = lambda: now[0]
    server.ledger.scoring_delay = 30.0

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client.submit(SLUG, sub_csv, "slow")
    assert client.submissions(SLUG)[0].status == "pending"
    early = wait_for_scores(project, SLUG, client=client, timeout=15, poll=10, sleep=sleep, clock=lambda: now[0])
    assert early.pending == 1 and now[0] == 1_000_015.0
    asked = len(names(server))
    done = wait_for_scores(project, SLUG, client=client, timeout=60, poll=10, sleep=sleep, clock=lambda: now[0])
    assert done.pending == 0 and done.submissions[0].info.status == "complete"
    assert now[0] == 1_000_035.0
    polls = names(server)[asked:]
    first_report = polls.index("ListSubmissions", 1)       # the listing that found the pending one, then polls
    assert polls[0] == "ListSubmissions" and polls[1:first_report] == ["GetSubmission"] * 2


def test_waiting_for_one_ref_polls_only_that_submission(project, client, server, sub_csv):
    now = [1_000_000.0]
    server.ledger.clock = lambda: now[0]
    server.ledger.scoring_delay = 30.0
    ref = client.submit(SLUG, sub_csv, "one").ref
    assert client.submission(ref).status == "pending"
    asked = len(names(server))
    done = wait_for_scores(project, SLUG, client=client, refs=[ref], timeout=60, poll=20,
                           sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert names(server)[asked:asked + 2] == ["GetSubmission", "GetSubmission"] and now[0] == 1_000_040.0
    assert client.submission(ref).status == "complete" and done.pending == 0


# -- the commands ----------------------------------------------------------------------------------------
def test_submit_and_status_commands(project, server, run, sub_csv, tmp_path):
    dry = run_cli(["submit", SLUG, "--run", run.run_id, "--file", str(sub_csv), "--dry-run"], tmp_path)
    assert dry.returncode == 0 and "dry run:" in dry.stdout and uploads(server) == []
    sent = run_cli(["submit", SLUG, "--run", run.run_id, "--file", str(sub_csv), "-m", "cli try"], tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "ref 50000001" in sent.stdout
    assert json.loads((run.path / "run.json").read_text())["submissions"][0]["ref"] == 50000001

    bad = tmp_path / "bad.csv"
    bad.write_text("id,species\n1,cat\n")
    KaggleClient().submit(SLUG, bad, "broken")
    shown = run_cli(["status", SLUG, "--top", "3"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    line = next(ln for ln in shown.stdout.splitlines() if ln.lstrip().startswith("50000001"))
    public = f"{accuracy(PRED, public_ids(server)):.5f}"
    private = f"{accuracy(PRED, [i for i in TRUTH if i not in public_ids(server)]):.5f}"
    assert line.split()[3:7] == ["complete", public, private, run.run_id]
    assert "50000002 failed: bad.csv: columns are ['id', 'species'], expected ['id', 'label']" in shown.stdout
    assert "submissions left today: 3 (2 made today)" in shown.stdout
    rank = next(r.rank for r in KaggleClient().leaderboard(SLUG) if r.team_name == USER)
    assert f"my position: {rank} of 1 teams" in shown.stdout

    server.ledger.scoring_delay = 600.0
    KaggleClient().submit(SLUG, sub_csv, "slow")
    waited = run_cli(["status", SLUG, "--wait", "--timeout", "1"], tmp_path)
    assert waited.returncode == 1 and "pending" in waited.stdout
    assert waited.stderr.strip() == f"error: {SLUG}: 1 submission(s) still pending after 1 s"


# -- a server that never answers (issue #12, fault 3) ---------------------------------------------------
@pytest.fixture
def silent_proxy(monkeypatch):
    """A TCP port that accepts connections and never answers, set as the proxy of every request."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])      # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("KAGGLE_KIT_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("KAGGLE_KIT_READ_TIMEOUT", "0.5")
    yield url
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def finishes(fn, limit: float = 120.0):
    """Run ``fn`` in a thread; its exception (or result) once it returns, failing the test if it hangs."""
    import threading

    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(fn)), daemon=True)
    thread.start()
    thread.join(limit)
    assert outcome, f"still waiting for the server after {limit} s"
    return outcome[0]


def _outcome(fn):
    try:
        return fn()
    except Exception as e:   # noqa: BLE001 - handed back to the test
        return e


def test_a_server_that_never_answers_is_retried_then_one_line(server, silent_proxy, sleeps):
    client = KaggleClient(retry=RetryPolicy(attempts=3, base=1.0, sleep=sleeps.append))
    err = finishes(lambda: client.submissions(SLUG))
    assert isinstance(err, KaggleError), err
    assert str(err) == (f"list submissions to {SLUG}: the server did not answer (3 attempt(s), timeouts 2 s to "
                        "connect, 0.5 s to read); check the network connection and proxy")
    assert sleeps == [1.0, 2.0]          # backed off like a 5xx


def test_fetch_and_status_commands_do_not_hang_on_a_silent_server(project, server, silent_proxy, tmp_path):
    for args in (["status", SLUG], ["fetch", SLUG]):
        done = run_cli(args, tmp_path, timeout=240)
        assert done.returncode != 0
        assert "the server did not answer" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_timeouts_setting_is_checked(monkeypatch):
    from kaggle_kit.errors import KitError
    from kaggle_kit.kaggle.client import Timeouts

    monkeypatch.setenv("KAGGLE_KIT_READ_TIMEOUT", "soon")
    with pytest.raises(KitError, match="KAGGLE_KIT_READ_TIMEOUT='soon': not a number of seconds"):
        Timeouts.from_env()
    monkeypatch.setenv("KAGGLE_KIT_READ_TIMEOUT", "7")
    assert KaggleClient().timeouts == Timeouts(connect=15.0, read=7.0)


# -- VERBOSE=1 never shows the key (issue #12, fault 4) --------------------------------------------------
def test_verbose_client_output_never_leaks_the_key(project, server, run, sub_csv, tmp_path, monkeypatch):
    import base64

    monkeypatch.setenv("VERBOSE", "1")
    server.inject("upload", status=403)
    failed = run_cli(["submit", SLUG, "--run", run.run_id, "--file", str(sub_csv), "-m", "leak?"], tmp_path)
    assert failed.returncode != 0 and "failed" in failed.stderr, failed.stderr
    basic = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    shown = failed.stdout + failed.stderr + (run.path / "run.json").read_text()
    for secret in (KEY, basic, basic.rstrip("=")):
        assert secret not in shown
    assert re.search(r"Authorization['\"]?:\s*['\"]?(Basic|Bearer)\s+(?!\*\*\*)", shown) is None


def test_scrub_masks_every_form_of_a_secret():
    import base64

    from kaggle_kit.kaggle.secrets import scrub

    basic = base64.b64encode(b"ann:k3y-9f8e7d").decode()
    text = (f"key=k3y-9f8e7d Authorization: Basic {basic} 'Proxy-Authorization': 'Bearer abc.def-ghi' "
            "Bearer KGAT_0123456789abcdef")
    out = scrub(text, user="ann", secrets=["k3y-9f8e7d", None])
    assert "k3y-9f8e7d" not in out and basic not in out and "abc.def" not in out and "KGAT_0123" not in out
    assert out.count("***") == 4
