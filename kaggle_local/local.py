"""Run the local Kaggle-compatible server: in a background thread (tests, the demo) or in the foreground.

The kit and the official ``kaggle`` client reach it through the client's own settings:
``KAGGLE_API_ENVIRONMENT=LOCALHOST`` and ``HTTP_PROXY=http://127.0.0.1:<port>`` (see
:meth:`LocalKaggleServer.env`). Nothing in the kit knows it is not talking to Kaggle.

Example:
    >>> import subprocess, sys, tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> with LocalKaggleServer() as server:            # serves the bundled cifar-10-mini
    ...     env = server.environ(home)
    ...     out = subprocess.run([sys.executable, "-m", "kaggle.cli", "competitions", "list", "-s", "mini"],
    ...                          env=env, capture_output=True, text=True).stdout
    >>> "cifar-10-mini" in out
    True
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kaggle_local.catalogue import load_catalogue
from kaggle_local.faults import Fault
from kaggle_local.httpd import KaggleHTTPServer
from kaggle_local.kernels import KernelStore
from kaggle_local.ledger import Ledger

__all__ = ["BUNDLED_ROOT", "DEFAULT_USERS", "UNSET", "LocalKaggleServer", "ServerConfig", "client_env",
           "merged_environ"]

BUNDLED_ROOT = Path(__file__).parent / "competitions"  # the demo competitions this server ships
DEFAULT_USERS = {"localuser": "localkey"}
# Variables that would route the client elsewhere or override the username/key: a client
# environment for the local server must not have them.
UNSET = ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
         "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_PATH", "KAGGLE_COMPETITION", "VERBOSE")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    root: Path = BUNDLED_ROOT                      # <root>/<slug>/<slug>.zip (+ solution.csv, competition.json)
    port: int = 0                                  # 0: any free port
    users: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))   # username -> key
    tokens: Mapping[str, str] = field(default_factory=dict)                          # bearer token -> username
    daily_limit: int = 5
    rules_not_accepted: frozenset[str] = frozenset()
    scoring_delay: float = 0.0                     # seconds a submission stays PENDING
    state_dir: Path | None = None                  # keep submissions across restarts (and pushed datasets
                                                   # and notebooks in <state_dir>/work; else a temporary folder)
    competition_json: Mapping[str, Path] = field(default_factory=dict)   # slug -> its competition.json,
                                                   # instead of <root>/<slug>/competition.json
    benchmarks: bool = True                        # put the scored sample submission on the leaderboard


def client_env(port: int, home: Path, user: str, key: str) -> dict[str, str]:
    """Client settings for a local server on ``port`` (also one running in another process).

    ``home`` becomes ``HOME``, with ``home/.kaggle`` (created) as the config folder, so that no
    real ``~/.kaggle/access_token`` or ``kaggle.json`` can override these credentials.
    """
    config_dir = Path(home) / ".kaggle"
    config_dir.mkdir(parents=True, exist_ok=True)
    proxy = f"http://127.0.0.1:{port}"
    return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": proxy, "http_proxy": proxy,
            "KAGGLE_USERNAME": user, "KAGGLE_KEY": key, "HOME": str(home), "KAGGLE_CONFIG_DIR": str(config_dir)}


def merged_environ(settings: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) without the :data:`UNSET` variables, plus ``settings``."""
    out = {k: v for k, v in (os.environ if base is None else base).items() if k not in UNSET}
    out.update(settings)
    return out


class LocalKaggleServer:
    """A Kaggle-compatible API server on 127.0.0.1; a context manager that serves in a thread."""

    def __init__(self, root: Path | str = BUNDLED_ROOT, **options: Any) -> None:
        if "rules_not_accepted" in options:
            options["rules_not_accepted"] = frozenset(options["rules_not_accepted"])
        self.config = ServerConfig(root=Path(root), **options)
        catalogue = load_catalogue(self.config.root, competition_json=self.config.competition_json,
                                   daily_limit=self.config.daily_limit,
                                   rules_not_accepted=self.config.rules_not_accepted)
        self.ledger = Ledger(catalogue, scoring_delay=self.config.scoring_delay,
                             state_dir=self.config.state_dir, benchmarks=self.config.benchmarks)
        self._scratch = None if self.config.state_dir else tempfile.mkdtemp(prefix="kaggle-local-work-")
        work = Path(self.config.state_dir) / "work" if self.config.state_dir else Path(self._scratch)
        self.kernels = KernelStore(work, competition_data=self._archive)
        self.httpd = KaggleHTTPServer(self.ledger, port=self.config.port, users=self.config.users,
                                      tokens=self.config.tokens, kernels=self.kernels)
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "LocalKaggleServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-kaggle", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()
        if self._scratch is not None:
            self.kernels.wait(timeout=60)
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _archive(self, slug: str) -> Path | None:
        comp = self.ledger.competitions.get(slug)
        return comp.archive if comp is not None else None

    def __enter__(self) -> "LocalKaggleServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- where and how to reach it ------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.httpd.server_port

    @property
    def url(self) -> str:
        return self.httpd.base_url

    def env(self, home: Path, user: str | None = None) -> dict[str, str]:
        """The variables to set for a client of this server (and remove those in :data:`UNSET`)."""
        user = user or next(iter(self.config.users))
        return client_env(self.port, home, user, self.config.users[user])

    def environ(self, home: Path, base: Mapping[str, str] | None = None, user: str | None = None) -> dict[str, str]:
        """A whole environment for a client subprocess: ``base`` (default os.environ) adjusted by :meth:`env`."""
        return merged_environ(self.env(home, user), base)

    # -- driving it ---------------------------------------------------------------------------------
    def inject(self, method: str, **fields: Any) -> None:
        """Make the next call(s) of ``method`` fail: see :class:`~kaggle_local.faults.Fault`."""
        self.httpd.faults.add(Fault(method=method, **fields))

    def clear_faults(self) -> None:
        self.httpd.faults.clear()

    def configure(self, slug: str, *, rules_accepted: bool | None = None, daily_limit: int | None = None) -> None:
        self.ledger.configure(slug, rules_accepted=rules_accepted, daily_limit=daily_limit)

    def requests(self) -> list[dict[str, Any]]:
        """Every request served so far: ``{"method", "name", "status", "range"}``."""
        return self.httpd.requests()
