"""AlyxStandInServer: a stand-in for an Alyx database on loopback, just enough of it for ONE's REST client.

It serves a token, an OpenAPI schema, ``tasks`` list/read/create/partial_update with Alyx's filters
by name, status and session, ``sessions`` read/partial_update (what ONE's ``json_field_update`` and
ibllib's QC use on ``qc`` and ``extended_qc``), the dataset types and data formats that registration
checks names against (IBL's, from tests/data/alyx: nothing of iblvideo's), and ``register-file``, which
records what it was sent. It is not Alyx: no Alyx server can run here, so this checks that iblvideo
speaks Alyx's REST dialect through the real ``AlyxClient``.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

TOKEN = "stand-in-token"
LISTS = Path(__file__).parent / "data" / "alyx"
QC_NAMES = ("NOT_SET", "PASS", "WARNING", "FAIL", "CRITICAL")  # Alyx's session QC choices
SCHEMA = {
    "openapi": "3.0.3",
    "paths": {
        "/tasks": {
            "get": {"parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("name", "status", "session")]},
            "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}}},
        },
        "/dataset-types": {"get": {}},
        "/data-formats": {"get": {}},
        "/register-file": {"post": {}},
        "/sessions/{id}": {
            "get": {"parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}]},
            "patch": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}}},
        },
        "/tasks/{id}": {
            "get": {"parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}]},
            "patch": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}}},
        },
    },
    "components": {"schemas": {
        "Task": {"properties": {k: {"type": "string"} for k in (
            "name", "session", "status", "priority", "log", "version", "time_elapsed_secs", "arguments", "executable")}},
        "Session": {"properties": {k: {"type": "string"} for k in ("qc", "extended_qc", "json")}},
    }},
}


class AlyxStandInServer(ThreadingHTTPServer):
    """Alyx's ``tasks`` and ``sessions`` endpoints and token login on 127.0.0.1, on a free port; records kept in memory."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tasks: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.registered: list[dict] = []  # the bodies of register-file requests
        self.dataset_types = [{"name": t["name"], "filename_pattern": t["filename_pattern"]} for t in _list("dataset_types.json")]
        self.data_formats = [{"name": f["name"], "file_extension": f["file_extension"]} for f in _list("data_formats.json")]
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def add_session(self, eid: str, qc: str = "NOT_SET", extended_qc: dict | None = None) -> dict:
        """A session record as Alyx's ``sessions`` endpoint returns it (the fields QC reads and writes)."""
        self.sessions[eid] = {"id": eid, "qc": qc, "extended_qc": extended_qc, "json": None}
        return self.sessions[eid]

    def __enter__(self) -> AlyxStandInServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _list(name: str) -> list[dict]:
    return json.loads((LISTS / name).read_text())


class _Handler(BaseHTTPRequestHandler):
    server: AlyxStandInServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw)
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Token {TOKEN}":
            return True
        self._send(403, {"detail": "Invalid token."})
        return False

    def _record(self, path: str) -> dict | None:
        """The task or session that ``path`` (``/tasks/<id>``, ``/sessions/<id>``) names; a 404 sent if none."""
        table = self.server.sessions if path.startswith("/sessions/") else self.server.tasks
        record = table.get(path.rstrip("/").split("/")[-1])
        if record is None:
            self._send(404, {"detail": "Not found."})
        return record

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path == "/auth-token":
            self._body()
            return self._send(200, {"token": TOKEN})
        if not self._authorised():
            return
        if url.path.rstrip("/") == "/register-file":
            body = self._body()
            with self.server.lock:
                self.server.registered.append(body)
            return self._send(201, [{"id": str(uuid.uuid4()), "name": name} for name in body["filenames"]])
        if url.path.rstrip("/") != "/tasks":
            return self._send(404, {"detail": "Not found."})
        with self.server.lock:
            task = {"id": str(uuid.uuid4()), "datetime": datetime.now().isoformat(), "log": None, "version": None,
                    "time_elapsed_secs": None, "priority": 0, "arguments": None, **self._body()}
            self.server.tasks[task["id"]] = task
        self._send(201, task)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path.startswith("/api/schema"):
            return self._send(200, SCHEMA)
        if not self._authorised():
            return
        if url.path.rstrip("/") in ("/dataset-types", "/data-formats"):
            return self._send(200, self.server.dataset_types if "types" in url.path else self.server.data_formats)
        if url.path.rstrip("/") == "/tasks":
            filters = {k: v[0] for k, v in parse_qs(url.query).items()}
            with self.server.lock:
                found = [t for t in self.server.tasks.values() if all(str(t.get(k)) == v for k, v in filters.items())]
            return self._send(200, found)
        if url.path.startswith(("/tasks/", "/sessions/")):
            with self.server.lock:
                record = self._record(url.path)
            if record is not None:
                self._send(200, record)
            return
        self._send(404, {"detail": "Not found."})

    def do_PATCH(self) -> None:
        url = urlparse(self.path)
        if not self._authorised():
            return
        body = self._body()
        if url.path.startswith("/sessions/") and body.get("qc", "NOT_SET") not in QC_NAMES:
            return self._send(400, {"qc": [f'"{body["qc"]}" is not a valid choice.']})  # as Alyx's serializer answers
        with self.server.lock:
            record = self._record(url.path)
            if record is not None:
                record.update(body)  # a JSON field given is replaced whole, as Alyx does
        if record is not None:
            self._send(200, record)


@contextmanager
def logged_in(tmp_path: Path, monkeypatch) -> Iterator[tuple[AlyxStandInServer, object]]:
    """A stand-in server and ONE's real AlyxClient logged in to it, ONE's parameters kept under ``tmp_path``."""
    from one.webclient import AlyxClient

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ONE keeps its parameters and token under ~/.one
    (tmp_path / "home").mkdir()
    with AlyxStandInServer() as server:
        yield server, AlyxClient(base_url=server.url, username="tester", password="secret", silent=True,
                                 cache_dir=tmp_path / "alyx-cache", cache_rest=None)
