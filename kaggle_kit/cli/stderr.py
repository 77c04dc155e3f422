"""Keeping TensorFlow's native start-up lines off the terminal, and every real error on it.

TensorFlow 2.21 logs through absl before absl is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not
reach lines such as ``I0000 ... port.cc:153] oneDNN custom operations are on`` or
``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``: they
are written by C++ straight to file descriptor 2. :func:`filter_native_stderr` therefore points
descriptor 2 at a pipe read by a thread that drops absl's info and warning lines (the levels
``TF_CPP_MIN_LOG_LEVEL=2`` means to hide) and forwards everything else, errors included, to the
real stderr. Python's ``sys.stderr`` keeps writing to the real stderr directly (so a terminal is
still a terminal for colours), and child processes inherit the filtered descriptor.

Example:
    >>> is_noise(b"I0000 00:00:1796183288.344391   11918 cpu_feature_guard.cc:227] This TensorFlow binary")
    True
    >>> is_noise(b"E0000 00:00:1796183288.344391   11918 cuda_dnn.cc:8] could not create cudnn handle")
    False
"""
from __future__ import annotations

import atexit
import os
import re
import select
import sys
import threading

__all__ = ["is_noise", "filter_native_stderr"]

_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:\d+(?:\.\d+)? +\d+ [\w.+-]+:\d+\] "            # absl INFO / WARNING lines
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)")
_installed = False


def is_noise(line: bytes) -> bool:
    """Whether ``line`` is one of TensorFlow's native info/warning lines."""
    return _NOISE.match(line) is not None


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([read_fd], [], [], 0.05)
        if not ready:                           # quiet for a moment: show a partial line (a prompt)
            if pending and not is_noise(pending):
                _write(out_fd, pending)
                pending = b""
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
        if kept:
            _write(out_fd, kept)
    if pending and not is_noise(pending):
        _write(out_fd, pending)
    os.close(read_fd)


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:
            return


def filter_native_stderr() -> None:
    """Route native writes to descriptor 2 through the filter (once per process; no-op without fd 2)."""
    global _installed
    if _installed:
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, AttributeError, ValueError):
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    old = sys.stderr
    sys.stderr = open(real, "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",
                      errors=getattr(old, "errors", None) or "backslashreplace", closefd=False)
    pump = threading.Thread(target=_pump, args=(read_fd, real), name="stderr-filter", daemon=True)
    pump.start()
    _installed = True

    def drain() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)            # closes this process's end of the pipe: the pump reads to its end
        pump.join(timeout=2)

    atexit.register(drain)
