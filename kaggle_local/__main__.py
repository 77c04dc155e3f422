"""``python -m kaggle_local``: run the local Kaggle-compatible server in the foreground.

The first line printed is the port (``--port 0`` picks a free one); then the client settings
to export. Ctrl-C (or SIGTERM) stops it.

    python -m kaggle_local --root kaggle_local/competitions --port 0
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from kaggle_local.errors import ServerError
from kaggle_local.local import BUNDLED_ROOT, UNSET, LocalKaggleServer

__all__ = ["build_parser", "main"]


def _pair(text: str) -> tuple[str, str]:
    left, sep, right = text.partition(":")
    if not sep or not left or not right:
        raise argparse.ArgumentTypeError(f"expected A:B, got {text!r}")
    return left, right


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kaggle_local", description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=BUNDLED_ROOT,
                   help="folder of <slug>/<slug>.zip (+ solution.csv); default: the bundled demo competition")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one (default)")
    p.add_argument("--user", type=_pair, action="append", metavar="NAME:KEY",
                   help="accepted username and key (repeatable; default localuser:localkey)")
    p.add_argument("--token", type=_pair, action="append", metavar="TOKEN:NAME",
                   help="accepted bearer token and its user (repeatable)")
    p.add_argument("--daily-limit", type=int, default=5, help="submissions per user per competition per day (5)")
    p.add_argument("--rules-not-accepted", action="append", default=[], metavar="SLUG",
                   help="answer 403 to downloads and submissions of this competition (repeatable)")
    p.add_argument("--scoring-delay", type=float, default=0.0, metavar="S",
                   help="seconds a new submission stays pending (0)")
    p.add_argument("--state-dir", type=Path, help="keep submissions here across restarts")
    p.add_argument("--competition-json", type=_pair, action="append", metavar="SLUG:PATH",
                   help="use PATH as the competition.json of SLUG, instead of <root>/SLUG/competition.json "
                        "(repeatable; for a folder the server must not write into)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {"port": args.port, "daily_limit": args.daily_limit, "rules_not_accepted": args.rules_not_accepted,
               "scoring_delay": args.scoring_delay, "state_dir": args.state_dir,
               "competition_json": {slug: Path(path) for slug, path in args.competition_json or []}}
    if args.user:
        options["users"] = dict(args.user)
    if args.token:
        options["tokens"] = dict(args.token)
    try:
        server = LocalKaggleServer(root=args.root, **options)
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(server.port, flush=True)
    user = next(iter(server.config.users))
    settings = {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": server.url, "http_proxy": server.url,
                "KAGGLE_USERNAME": user, "KAGGLE_KEY": server.config.users[user]}
    print("# client settings (also point HOME and KAGGLE_CONFIG_DIR at a scratch folder so that real "
          "credentials in ~/.kaggle cannot override these):", file=sys.stderr)
    for key, value in settings.items():
        print(f"export {key}={value}", file=sys.stderr)
    print(f"unset {' '.join(UNSET)}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
