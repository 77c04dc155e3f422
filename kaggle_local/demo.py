"""``make demo``: the whole fetch -> train -> submit -> status loop, offline.

It starts the local Kaggle-compatible server (serving the bundled ``cifar-10-mini`` competition) on
127.0.0.1, points the official ``kaggle`` client at it through the client's own settings, runs the
same ``kaggle-kit`` commands a competitor runs against kaggle.com, and stops the server.
The commands run in the current folder, which finds the kit project as it always does
(``$KAGGLE_KIT_HOME``, or the nearest folder with ``competitions/``); a scratch ``HOME``, deleted
afterwards, keeps your real ``~/.kaggle`` out of it. Nothing here imports ``kaggle_kit``.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kaggle_local import LocalKaggleServer

__all__ = ["SLUG", "STEPS", "main"]

SLUG = "cifar-10-mini"
STEPS = (
    ("competitions",),
    ("fetch", SLUG),
    ("train", SLUG, "--folds", "2"),
    ("runs", SLUG),
    ("submit", "--best", "-m", "demo: efficientnet_lite0 2-fold"),
    ("status", "--wait", "--timeout", "120"),
)


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kaggle-local-demo-") as home, \
            LocalKaggleServer(scoring_delay=1.0) as server:
        env = {**server.environ(Path(home)), "KAGGLE_KIT_COMPETITION": SLUG}
        print(f"local Kaggle-compatible server on {server.url} (KAGGLE_API_ENVIRONMENT=LOCALHOST, "
              f"HTTP_PROXY={env['HTTP_PROXY']})", flush=True)
        for step in STEPS:
            print(f"\n$ kaggle-kit {shlex.join(step)}", flush=True)
            code = subprocess.run([sys.executable, "-m", "kaggle_kit", *step], env=env).returncode
            if code != 0:
                print(f"demo stopped: `kaggle-kit {shlex.join(step)}` exited with {code}", file=sys.stderr)
                return code
    print(f"\ndemo finished in {time.perf_counter() - started:.0f}s; the server is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
