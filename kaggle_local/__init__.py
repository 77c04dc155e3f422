"""A local Kaggle-compatible API server, for tests and the offline demo.

It implements the API calls the official ``kaggle`` client makes to fetch data, submit, and read
submissions and leaderboards; scores submissions against a ``solution.csv``; enforces a daily
submission limit; and can inject faults (HTTP errors, Retry-After, delays, dropped connections).
For code competitions it also takes datasets and notebooks, runs a pushed notebook offline (nbclient
under ``unshare -n``) and scores the ``submission.csv`` it writes. It listens on 127.0.0.1 only.

It does not import ``kaggle_kit``: it knows each competition from its own files (``competition.json``
and ``solution.csv``) and scores with its own parser and metrics, as Kaggle would, so that it can
catch the kit's mistakes.

Start it:
    python -m kaggle_local --root <folder> --port 0        # prints the port, serves until Ctrl-C
    with LocalKaggleServer(root=...) as server: env = server.env(home)
"""
from kaggle_local.errors import ApiError, ServerError, SubmissionRejected
from kaggle_local.faults import Fault
from kaggle_local.local import BUNDLED_ROOT, UNSET, LocalKaggleServer, ServerConfig, client_env, merged_environ

__all__ = ["BUNDLED_ROOT", "UNSET", "ApiError", "Fault", "LocalKaggleServer", "ServerConfig", "ServerError",
           "SubmissionRejected", "client_env", "merged_environ"]
