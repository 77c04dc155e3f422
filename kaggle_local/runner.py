"""Run a pushed notebook as Kaggle does: nbclient, in a fresh process with no network.

The server calls :func:`run_notebook`; it starts ``python runner.py`` (this file, by path, so the
kernel does not see the server's own packages on ``PYTHONPATH``) inside a new network namespace
(``unshare -n``, loopback up: the kernel and nbclient talk over it, nothing else is reachable), with
``KAGGLE_KIT_INPUT_ROOT``/``KAGGLE_KIT_WORKING`` naming the version's ``input/`` and ``working/``
folders (``/kaggle/input`` and ``/kaggle/working`` on Kaggle) and the working folder as its
current directory. Where ``unshare -n`` is refused (not root, no user namespaces) every proxy
variable points at a closed port instead, and the log says so.

The child writes the executed notebook and ``result.json``: ``{"status": "complete"|"error",
"failure": "<ename>: <evalue>", "log": [{"stream_name", "time", "data"}]}``; the log is shaped like
the one Kaggle keeps of a notebook's run.

Example:
    >>> one_line_error({"ename": "ValueError", "evalue": "boom"})
    'ValueError: boom'
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunResult", "network_isolation", "one_line_error", "run_notebook"]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DEAD_PROXY = "http://127.0.0.1:9"      # the discard port: nothing listens, every request fails fast
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    status: str                         # "complete" or "error"
    failure: str                        # one line: the notebook's error, or why it could not run
    log: list[dict[str, Any]]
    seconds: float


def one_line_error(output: dict[str, Any]) -> str:
    return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()


def network_isolation() -> list[str] | None:
    """The command prefix that cuts a process off the network, or None where it cannot be done here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$0" "$@"']
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else None


def run_notebook(notebook: Path, *, input_root: Path, working: Path, timeout: float) -> RunResult:
    """Execute ``notebook`` offline with ``working`` as its current folder; never raises for a failing notebook."""
    working.mkdir(parents=True, exist_ok=True)
    home = working.parent / "home"
    home.mkdir(exist_ok=True)
    out_dir = working.parent
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env.update(HOME=str(home), KAGGLE_KIT_INPUT_ROOT=str(input_root), KAGGLE_KIT_WORKING=str(working),
               KAGGLE_KERNEL_RUN_TYPE="Batch", PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    prefix = network_isolation()
    note = []
    if prefix is None:
        prefix = []
        env.update({k: DEAD_PROXY for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                            "https_proxy", "all_proxy")})
        note = [{"stream_name": "stderr", "time": 0.0,
                 "data": "[local server] `unshare -n` is not available here: the network is blocked only "
                         f"through the proxy variables ({DEAD_PROXY})\n"}]
    cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), str(notebook), str(out_dir / "executed.ipynb"),
           str(out_dir / "result.json"), str(timeout)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=working, env=env, capture_output=True, text=True, timeout=timeout + 60)
        problem = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["runner failed"])[-1]
    except subprocess.TimeoutExpired:
        problem = f"Notebook exceeded its time limit of {timeout:g} seconds"
    seconds = time.monotonic() - started
    result_file = out_dir / "result.json"
    if result_file.is_file():
        data = json.loads(result_file.read_text())
        return RunResult(status=data["status"], failure=data["failure"], log=note + data["log"], seconds=seconds)
    return RunResult(status="error", failure=problem or "the notebook did not run", log=note, seconds=seconds)


# -- the child: runs inside the namespace -----------------------------------------------------------
def _log_of(nb: Any, started: float) -> list[dict[str, Any]]:
    log = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        stamp = cell.metadata.get("execution", {}).get("iopub.execute_input")
        at = 0.0
        if stamp:
            from datetime import datetime

            at = max(0.0, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - started)
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                log.append({"stream_name": out.name, "time": round(at, 3), "data": out.text})
            elif out.output_type == "error":
                text = ANSI.sub("", "\n".join(out.traceback)) + "\n"
                log.append({"stream_name": "stderr", "time": round(at, 3), "data": text})
            elif "text/plain" in out.get("data", {}):
                log.append({"stream_name": "stdout", "time": round(at, 3), "data": out.data["text/plain"] + "\n"})
    return log


def _child(source: str, executed: str, result: str, timeout: str) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(source, as_version=4)
    started = time.time()
    status, failure = "complete", ""
    try:
        NotebookClient(nb, timeout=int(float(timeout)), kernel_name="python3", record_timing=True,
                       resources={"metadata": {"path": os.getcwd()}}).execute()
    except CellExecutionError:
        status = "error"
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error"]
        failure = one_line_error(errors[-1]) if errors else "the notebook raised an error"
    except CellTimeoutError:
        status, failure = "error", f"Notebook exceeded its time limit of {float(timeout):g} seconds"
    except DeadKernelError as e:
        status, failure = "error", f"The kernel died: {e}"
    nbformat.write(nb, executed)
    Path(result).write_text(json.dumps({"status": status, "failure": failure, "log": _log_of(nb, started)}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:5]))
