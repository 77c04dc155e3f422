"""``make demo``: the whole fetch -> train -> submit -> status loop, offline; then a code-competition round.

It starts the local Kaggle-compatible server (serving the bundled ``cifar-10-mini`` competition) on
127.0.0.1, points the official ``kaggle`` client at it through the client's own settings, runs the
same ``kaggle-kit`` commands a competitor runs against kaggle.com, and stops the server.
The commands run in the current folder, which finds the kit project as it always does
(``$KAGGLE_KIT_HOME``, or the nearest folder with ``competitions/``); a scratch ``HOME``, deleted
afterwards, keeps your real ``~/.kaggle`` out of it. Nothing here imports ``kaggle_kit``.

The second round treats the same competition as a code competition: a plugin in a scratch folder
(``KAGGLE_KIT_COMPETITIONS``) replaces the bundled one with ``code_competition=True``, and
``submit --notebook`` packages the best run as a dataset, pushes the inference notebook, which the
server runs with no network, and submits that version.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kaggle_local import LocalKaggleServer

__all__ = ["CODE_PLUGIN", "CODE_STEPS", "SLUG", "STEPS", "main"]

SLUG = "cifar-10-mini"
STEPS = (
    ("competitions",),
    ("fetch", SLUG),
    ("train", SLUG, "--folds", "2"),
    ("runs", SLUG),
    ("submit", "--best", "-m", "demo: efficientnet_lite0 2-fold"),
    ("status", "--wait", "--timeout", "120"),
)
CODE_STEPS = (
    ("submit", "--best", "--notebook", "-m", "demo: the same run as a notebook"),
    ("status", "--wait", "--timeout", "120"),
)
CODE_PLUGIN = '''"""cifar-10-mini as a code competition (make demo's second round)."""
from dataclasses import replace

from kaggle_kit.bundled.cifar_10_mini import COMPETITION as BUNDLED

COMPETITION = replace(BUNDLED, code_competition=True, notebook_hours=1.0)
'''


def _run(step: tuple[str, ...], env: dict[str, str]) -> int:
    print(f"\n$ kaggle-kit {shlex.join(step)}", flush=True)
    code = subprocess.run([sys.executable, "-m", "kaggle_kit", *step], env=env).returncode
    if code != 0:
        print(f"demo stopped: `kaggle-kit {shlex.join(step)}` exited with {code}", file=sys.stderr)
    return code


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kaggle-local-demo-") as home, \
            LocalKaggleServer(scoring_delay=1.0) as server:
        env = {**server.environ(Path(home)), "KAGGLE_KIT_COMPETITION": SLUG}
        print(f"local Kaggle-compatible server on {server.url} (KAGGLE_API_ENVIRONMENT=LOCALHOST, "
              f"HTTP_PROXY={env['HTTP_PROXY']})", flush=True)
        for step in STEPS:
            if code := _run(step, env):
                return code
        plugins = Path(home) / "plugins"
        plugins.mkdir()
        (plugins / "cifar_10_mini.py").write_text(CODE_PLUGIN)
        print(f"\n# code-competition round: {SLUG} with code_competition=True (a plugin in KAGGLE_KIT_COMPETITIONS)",
              flush=True)
        for step in CODE_STEPS:
            if code := _run(step, {**env, "KAGGLE_KIT_COMPETITIONS": str(plugins)}):
                return code
    print(f"\ndemo finished in {time.perf_counter() - started:.0f}s; the server is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
