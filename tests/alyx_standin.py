"""AlyxStandInServer: a stand-in for an Alyx database on loopback, just enough of it for ONE's REST client.

It serves a token, an OpenAPI schema, ``tasks`` list/read/create/partial_update with Alyx's filters
by name, status and session, the dataset types and data formats that registration checks names
against, and ``register-file``, which records what it was sent. It is not Alyx: no Alyx server can
run here, so this checks that the queue speaks Alyx's REST dialect through the real ``AlyxClient``.
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "stand-in-token"
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
        "/tasks/{id}": {
            "get": {"parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}]},
            "patch": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}}},
        },
    },
    "components": {"schemas": {"Task": {"properties": {k: {"type": "string"} for k in (
        "name", "session", "status", "priority", "log", "version", "time_elapsed_secs", "arguments", "executable")}}}},
}


class AlyxStandInServer(ThreadingHTTPServer):
    """Alyx's ``tasks`` endpoint and token login on 127.0.0.1, on a free port; records kept in memory."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tasks: dict[str, dict] = {}
        self.registered: list[dict] = []  # the bodies of register-file requests
        self.dataset_types = [{"name": name, "filename_pattern": pattern} for name, pattern in (
            ("camera.dlc", "_ibl_*Camera.dlc.*"), ("camera.ROIMotionEnergy", "*Camera.ROIMotionEnergy.*"),
            ("ROIMotionEnergy.position", "*ROIMotionEnergy.position.*"), ("camera.features", "_ibl_*Camera.features.*"),
            ("camera.sniff_times", "_iblvideo_*Camera.sniff_times.*"), ("licks.times", ""), ("dlc.qc", "_iblvideo_dlc.qc.*"),
        )]
        self.data_formats = [{"file_extension": ext} for ext in (".npy", ".pqt", ".json")]
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> AlyxStandInServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


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

    def _task(self, path: str) -> dict | None:
        task = self.server.tasks.get(path.rstrip("/").split("/")[-1])
        if task is None:
            self._send(404, {"detail": "Not found."})
        return task

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
        if url.path.startswith("/tasks/"):
            with self.server.lock:
                task = self._task(url.path)
            if task is not None:
                self._send(200, task)
            return
        self._send(404, {"detail": "Not found."})

    def do_PATCH(self) -> None:
        url = urlparse(self.path)
        if not self._authorised():
            return
        with self.server.lock:
            task = self._task(url.path)
            if task is not None:
                task.update(self._body())
        if task is not None:
            self._send(200, task)
