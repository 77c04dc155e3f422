"""``kaggle-kit serve``: an HTTP prediction service for one run (see :mod:`kaggle_kit.tools.serve`)."""
from __future__ import annotations

import argparse

from kaggle_kit.cli.base import arg, command, competition_arg, console, positive, run_args
from kaggle_kit.cli.core import tta_args

__all__ = []

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def milliseconds(text: str) -> float:
    """An argparse type: 0 or more milliseconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds, not {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more milliseconds, not {text}")
    return value


@command("serve", "serve a run's fold ensemble over HTTP: POST /predict, GET /health, GET /info",
         competition_arg(),
         *run_args(),
         arg("--host", help="address to listen on (default 127.0.0.1: this machine only)"),
         arg("--port", type=int, help="port to listen on; 0 picks a free one (default 8000)"),
         arg("--top-k", type=positive, help="classes per answer unless a request sets k (default 3)"),
         arg("--max-bytes", type=positive, help="largest request body accepted, in bytes (default 20 MiB)"),
         *tta_args(),
         arg("--no-calibrate", dest="calibrate", action="store_false",
             help="answer the raw probabilities, not the run's calibrated ones (log-loss competitions)"),
         arg("--threads", type=positive, help="worker threads handling requests (default 16)"),
         arg("--batch-window", type=milliseconds, metavar="MS",
             help="collect concurrent requests for up to MS milliseconds into one model call; 0 runs each "
                  "request alone (default 5)"),
         arg("--max-batch", type=positive, metavar="N", help="most images in one model call (default 32)"),
         arg("--no-batch", action="store_true", help="no batching: the same as --batch-window 0"))
def serve_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.events import Event, ServerReady
    from kaggle_kit.project import Project
    from kaggle_kit.tools.batching import Batching
    from kaggle_kit.training.runs import pick_run
    from kaggle_kit.tools.serve import serve

    project = Project.find()
    comp = project.competition(args.competition)
    run = pick_run(project, comp, args.run)
    out = console()

    def report(event: Event) -> None:
        if not isinstance(event, ServerReady):
            return
        cv = f"{run.cv:.4f}" if run.cv is not None else "-"
        out.print(f"serving [bold]{event.run_id}[/] ({comp.slug}, CV {comp.metric} {cv}, {event.service}) "
                  f"on [bold]{event.url}[/]")
        out.print(f"try: curl -F image=@picture.png '{event.url}/predict?k={event.top_k}'   "
                  f"(Ctrl-C stops)")
        if args.host is not None and args.host not in LOOPBACK:
            out.print(f"[yellow]warning:[/] listening on {args.host}: anyone who can reach this machine "
                      f"can use the service (it has no authentication)")

    options = {k: getattr(args, k) for k in ("host", "port", "top_k", "max_bytes", "tta", "threads", "calibrate")}
    if args.no_batch:
        options["batching"] = Batching.off()
    elif args.batch_window is not None or args.max_batch is not None:
        defaults = Batching()
        options["batching"] = Batching(window_ms=defaults.window_ms if args.batch_window is None else args.batch_window,
                                       max_batch=args.max_batch or defaults.max_batch)
    try:
        serve(run, comp, **{k: v for k, v in options.items() if v is not None}, report=report)
    except KeyboardInterrupt:  # while the models load; once serving, waitress returns on Ctrl-C itself
        pass
    out.print("stopped")
    return 0
