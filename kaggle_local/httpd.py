"""The HTTP side of the local Kaggle server: a threaded stdlib server on 127.0.0.1.

The official client reaches it as an HTTP proxy (``HTTP_PROXY`` plus
``KAGGLE_API_ENVIRONMENT=LOCALHOST``), so request lines arrive in absolute form
(``POST http://localhost/api/v1/...``); direct requests work too. Routes:

* ``POST /api/v1/<service>/<Method>``: the API methods of :mod:`kaggle_local.rpc`
  (``Authorization: Basic user:key`` or ``Bearer <token>``, 401 otherwise);
* ``GET /_blobs/<slug>/...?sig=``: downloads the API redirects to (signed, no credentials;
  ``Content-Length``, ``Last-Modified``, ``ETag``, ``Range``/``If-Range``);
* ``GET /_blobs/_kernels/<owner>/<notebook>/<version>/<file>?sig=``: a notebook version's output files;
* ``PUT /_upload/<token>``: the submission upload, or a dataset file's (:mod:`kaggle_local.kernels_rpc`);
* ``/_admin/fault`` (POST a :class:`~kaggle_local.faults.Fault` as JSON, GET, DELETE),
  ``POST /_admin/competition`` (``{"slug", "rules_accepted", "daily_limit"}``),
  ``GET /_admin/requests`` (the request log) and ``GET /_admin/submissions``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

from kaggle_local.errors import ApiError, ServerError
from kaggle_local.faults import Fault, FaultBook
from kaggle_local.kernels import KernelStore
from kaggle_local.kernels_rpc import KERNEL_BLOBS
from kaggle_local.ledger import Ledger
from kaggle_local.rpc import RPCS, Call, Payload, Redirect

__all__ = ["API_PATH", "LOOPBACK", "KaggleHTTPServer", "KaggleHandler"]

LOOPBACK = "127.0.0.1"
API_PATH = re.compile(r"^(?:/api)?/v1/(?P<service>[\w.]+)/(?P<method>\w+)$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
CHUNK = 64 * 1024


class KaggleHTTPServer(ThreadingHTTPServer):
    """Serves one :class:`Ledger` on 127.0.0.1; ``port=0`` picks a free port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ledger: Ledger, *, port: int = 0, users: Mapping[str, str],
                 tokens: Mapping[str, str], kernels: KernelStore | None = None) -> None:
        super().__init__((LOOPBACK, port), KaggleHandler)
        self.ledger = ledger
        self.kernels = kernels
        self.users = dict(users)
        self.tokens = dict(tokens)
        self.faults = FaultBook()
        self.secret = secrets.token_bytes(16)
        self.log: list[dict[str, Any]] = []
        self.log_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"

    def sign(self, path: str) -> str:
        return hmac.new(self.secret, path.encode(), hashlib.sha256).hexdigest()[:32]

    def blob_url(self, path: str) -> str:
        return f"{self.base_url}{path}?sig={self.sign(path)}"

    def upload_url(self, token: str) -> str:
        return f"{self.base_url}/_upload/{token}"

    def user_of(self, authorization: str) -> str | None:
        """The user an ``Authorization`` header proves, or None."""
        scheme, _, value = authorization.partition(" ")
        if scheme == "Basic":
            try:
                user, _, key = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            known = self.users.get(user)
            return user if known is not None and hmac.compare_digest(known, key) else None
        if scheme == "Bearer":
            return self.tokens.get(value.strip())
        return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return      # a client that hung up: nothing to report
        super().handle_error(request, client_address)

    def record(self, entry: dict[str, Any]) -> None:
        with self.log_lock:
            self.log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.log_lock:
            return list(self.log)


class KaggleHandler(BaseHTTPRequestHandler):
    server: KaggleHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "kaggle-kit-local"

    # -- dispatch ---------------------------------------------------------------------------------
    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        self._name = url.path
        try:
            api = API_PATH.match(url.path)
            if api and self.command == "POST":
                self._api(api["service"], api["method"])
            elif url.path.startswith("/_blobs/") and self.command == "GET":
                self._blob(url.path, urllib.parse.parse_qs(url.query))
            elif url.path.startswith("/_upload/") and self.command == "PUT":
                self._upload(url.path.removeprefix("/_upload/"))
            elif url.path.startswith("/_admin/"):
                self._admin(url.path.removeprefix("/_admin/"), urllib.parse.parse_qs(url.query))
            else:
                self._read_body()
                raise ApiError(404, f"No route for {self.command} {url.path}.")
        except ApiError as e:
            self._send_error(e)
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except (ServerError, ValueError, TypeError) as e:   # a malformed request: answer, don't die
            self._send_error(ApiError(400, str(e)))

    def _api(self, service: str, method: str) -> None:
        self._name = method
        body = self._read_json()
        fault = self.server.faults.take(method)
        if fault is not None and not fault.after and self._apply_fault(fault):
            return
        rpc = RPCS.get(f"{service}/{method}")
        if rpc is None:
            raise ApiError(404, f"Unknown API method {service}/{method}.")
        user = self.server.user_of(self.headers.get("Authorization", ""))
        if rpc.needs_user and user is None:
            raise ApiError(401, "Unauthenticated: missing or invalid credentials.")
        reply = rpc.fn(Call(ledger=self.server.ledger, user=user, body=body, blob_url=self.server.blob_url,
                            upload_url=self.server.upload_url, token_user=self.server.tokens.get,
                            kernels=self.server.kernels))
        if fault is not None and fault.after and self._apply_fault(fault):
            return                      # carried out, but the answer is lost
        if isinstance(reply, Redirect):
            self._send(302, b"", {"Location": reply.url})
        elif isinstance(reply, Payload):
            self._send(200, reply.data, {"Content-Type": reply.content_type,
                                         "Last-Modified": formatdate(time.time(), usegmt=True)})
        else:
            self._send_json(200, reply)

    # -- downloads ----------------------------------------------------------------------------------
    def _blob(self, path: str, query: Mapping[str, list[str]]) -> None:
        self._name = "download"
        if not hmac.compare_digest(query.get("sig", [""])[0], self.server.sign(path)):
            raise ApiError(403, "Invalid or missing download signature.")
        slug, _, rest = path.removeprefix("/_blobs/").partition("/")
        size, mtime, opener = self._kernel_output(rest) if slug == KERNEL_BLOBS else self._competition_file(slug, rest)
        fault = self.server.faults.take("download")
        if fault:
            time.sleep(fault.delay)
            if fault.status and not fault.drop:
                self._fault_reply(fault)
                return
            fault = fault if fault.drop else None
        etag = f'"{size:x}-{int(mtime):x}"'
        last_modified = formatdate(int(mtime), usegmt=True)
        headers = {"Content-Type": "application/zip" if rest.endswith(".zip") else "application/octet-stream",
                   "Last-Modified": last_modified, "ETag": etag, "Accept-Ranges": "bytes"}
        start, end, status = 0, size - 1, 200
        wanted = RANGE.match(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range in (etag, last_modified)):
            start = int(wanted[1])
            end = min(int(wanted[2]), size - 1) if wanted[2] else size - 1
            if start >= size or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(length)}.items():
            self.send_header(k, v)
        self.end_headers()
        limit = length if not fault else min(length, fault.drop_after if fault.drop_after is not None else length // 2)
        with opener() as fh:
            fh.seek(start)
            left = limit
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        if fault:   # cut the connection mid-body
            self.wfile.flush()
            time.sleep(fault.stall)
            self._cut()

    # -- uploads ----------------------------------------------------------------------------------
    def _upload(self, token: str) -> None:
        self._name = "upload"
        fault = self.server.faults.take("upload")
        if fault and fault.drop:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(fault.drop_after if fault.drop_after is not None else length // 2)
            time.sleep(fault.delay + fault.stall)
            self._cut()
            return
        data = self._read_body()
        if fault:
            time.sleep(fault.delay)
            if fault.status:
                self._fault_reply(fault)
                return
        kernels = self.server.kernels
        if not data and self.headers.get("Content-Range", "").startswith("bytes */") and kernels is not None:
            self._resume_query(kernels.blob_state(token))
            return
        if kernels is None or not kernels.receive_blob(token, data):
            self.server.ledger.receive_upload(token, data)
        self._send_json(200, {})

    def _resume_query(self, state: str | None) -> None:
        """The client asks how much of a resumable upload arrived (``Content-Range: bytes */N``): all of
        it (200), none (308 without ``Range``: start again) or an unknown token (404: expired)."""
        if state is None:
            raise ApiError(404, "Upload URL not found or expired.")
        if state == "complete":
            self._send_json(200, {})
        else:
            self._send(308, b"", {})

    def _competition_file(self, slug: str, rest: str) -> tuple[int, float, Callable[[], Any]]:
        """Size, mtime and opener of a competition's archive (``<slug>.zip``) or one of its files (``files/<name>``)."""
        comp = self.server.ledger.competition(slug)
        if rest == comp.archive.name:
            stat = comp.archive.stat()
            return stat.st_size, stat.st_mtime, lambda: comp.archive.open("rb")
        if rest.startswith("files/"):
            member = urllib.parse.unquote(rest.removeprefix("files/"))
            info = next((m for m in comp.members() if m.filename == member), None)
            if info is None:
                raise ApiError(404, f"File '{member}' not found.")
            data = comp.read_member(member)
            return len(data), time.mktime((*info.date_time, 0, 0, -1)), lambda: io.BytesIO(data)
        raise ApiError(404, f"No file /_blobs/{slug}/{rest}.")

    def _kernel_output(self, rest: str) -> tuple[int, float, Callable[[], Any]]:
        """Size, mtime and opener of the file ``<owner>/<slug>/<version>/<name>`` a notebook version wrote."""
        owner, slug, number, name = (rest.split("/", 3) + ["", "", "", ""])[:4]
        if self.server.kernels is None or not number.isdigit():
            raise ApiError(404, f"No file {rest}.")
        version = self.server.kernels.version(owner, slug, int(number))
        name = urllib.parse.unquote(name)
        if name not in version.outputs():
            raise ApiError(404, f"Notebook {owner}/{slug} version {number} has no output {name!r}.")
        file = version.working / name
        stat = file.stat()
        return stat.st_size, stat.st_mtime, lambda: file.open("rb")

    # -- admin ------------------------------------------------------------------------------------
    def _admin(self, what: str, query: Mapping[str, list[str]]) -> None:
        self._name = f"admin/{what}"
        body = self._read_json()
        server = self.server
        if what == "fault" and self.command == "POST":
            server.faults.add(Fault.from_dict(body))
        elif what == "fault" and self.command == "DELETE":
            server.faults.clear()
        elif what == "competition" and self.command == "POST":
            server.ledger.configure(str(body.get("slug", "")), rules_accepted=body.get("rules_accepted"),
                                    daily_limit=body.get("daily_limit"))
        elif what == "requests" and self.command == "GET":
            self._send_json(200, {"requests": server.requests()})
            return
        elif what == "submissions" and self.command == "GET":
            slug, user = query.get("slug", [""])[0], query.get("user", [""])[0]
            subs = server.ledger.submissions(slug, user) if user else []
            self._send_json(200, {"submissions": [asdict(s) for s in subs]})
            return
        elif what != "fault":
            raise ApiError(404, f"No admin route {self.command} /_admin/{what}.")
        self._send_json(200, {"faults": [f.to_dict() for f in server.faults.pending()]})

    # -- helpers ----------------------------------------------------------------------------------
    def _apply_fault(self, fault: Fault) -> bool:
        """Apply a fault taken for an API method; True when it answered (or dropped) the call."""
        time.sleep(fault.delay)
        if fault.drop:
            self._cut()
            return True
        if fault.status is None:
            return False
        self._fault_reply(fault)
        return True

    def _fault_reply(self, fault: Fault) -> None:
        status = fault.status or 500
        message = fault.message or f"Injected fault: HTTP {status}."
        self._send_error(ApiError(status, message, fault.retry_after))

    def _cut(self) -> None:
        """Close the connection without (finishing) an answer."""
        self.close_connection = True
        self.server.record({"method": self.command, "name": self._name, "status": "dropped",
                            "range": self.headers.get("Range")})
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_json(self) -> dict[str, Any]:
        raw = self._read_body()
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return data

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_error(self, error: ApiError) -> None:
        headers = {} if error.retry_after is None else {"Retry-After": f"{error.retry_after:g}"}
        self._send_json(error.status, {"code": error.status, "message": error.message}, headers)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.record({"method": self.command, "name": getattr(self, "_name", self.path),
                            "status": int(code) if str(code).isdigit() else code,
                            "range": self.headers.get("Range") if self.headers else None})

    def log_message(self, format: str, *args: Any) -> None:   # quiet: the log is in server.requests()
        return

