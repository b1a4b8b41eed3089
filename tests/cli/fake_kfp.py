"""A minimal stand-in for the Kubeflow Pipelines v2beta1 REST API, on 127.0.0.1.

Only the endpoints ``kfp.Client`` calls for upload / version / experiment / run / recurring
run are answered; every request is recorded so that tests can check what the CLI sent.
A real KFP backend does not run here: this is the boundary we cannot run.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

PREFIX = "/apis/v2beta1"


class FakeKfp:
    def __init__(self, final_state: str = "SUCCEEDED") -> None:
        self.final_state = final_state
        self.requests: list[tuple[str, str, Any]] = []
        # (namespace, display name) -> id; "" is the shared namespace.  As KFP's server does,
        # a listing without a namespace sees only shared pipelines.
        self.pipelines: dict[tuple[str, str], str] = {}
        self.experiments: dict[str, str] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, body: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                fake.requests.append(("GET", url.path, parse_qs(url.query)))
                name = _filter_name(parse_qs(url.query))
                if url.path == f"{PREFIX}/healthz":
                    return self._reply({"multi_user": False})
                if url.path == f"{PREFIX}/pipelines":
                    key = (parse_qs(url.query).get("namespace", [""])[0], name or "")
                    found = (
                        [{"pipeline_id": fake.pipelines[key], "display_name": name}]
                        if key in fake.pipelines
                        else []
                    )
                    return self._reply(
                        {"pipelines": found, "total_size": len(found)} if found else {}
                    )
                if url.path == f"{PREFIX}/experiments":
                    found = (
                        [{"experiment_id": fake.experiments[name], "display_name": name}]
                        if name in fake.experiments
                        else []
                    )
                    return self._reply(
                        {"experiments": found, "total_size": len(found)} if found else {}
                    )
                if url.path.startswith(f"{PREFIX}/runs/"):
                    run_id = url.path.rsplit("/", 1)[1]
                    return self._reply(
                        {"run_id": run_id, "display_name": "r", "state": fake.final_state}
                    )
                return self._reply({"error": f"not faked: {url.path}"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw) if raw else {}
                except (json.JSONDecodeError, UnicodeDecodeError):
                    body = {"multipart_bytes": len(raw)}
                query = parse_qs(url.query)
                fake.requests.append(("POST", url.path, {"query": query, "body": body}))
                if url.path == f"{PREFIX}/pipelines/upload":
                    name = query.get("name", ["pipeline"])[0]
                    key = (query.get("namespace", [""])[0], name)
                    if key in fake.pipelines:
                        return self._reply({"error": f"pipeline {name} already exists"}, 409)
                    fake.pipelines[key] = f"pipeline-{len(fake.pipelines) + 1}"
                    return self._reply({"pipeline_id": fake.pipelines[key], "display_name": name})
                if url.path == f"{PREFIX}/pipelines/upload_version":
                    return self._reply(
                        {
                            "pipeline_id": query.get("pipelineid", ["?"])[0],
                            "pipeline_version_id": "version-1",
                            "display_name": query.get("name", ["v"])[0],
                        }
                    )
                if url.path == f"{PREFIX}/experiments":
                    name = body["display_name"]
                    fake.experiments[name] = f"experiment-{len(fake.experiments) + 1}"
                    return self._reply(
                        {"experiment_id": fake.experiments[name], "display_name": name}
                    )
                if url.path == f"{PREFIX}/runs":
                    return self._reply(
                        {
                            "run_id": "run-1",
                            "display_name": body["display_name"],
                            "state": "PENDING",
                        }
                    )
                if url.path == f"{PREFIX}/recurringruns":
                    return self._reply(
                        {"recurring_run_id": "recurring-1", "display_name": body["display_name"]}
                    )
                return self._reply({"error": f"not faked: {url.path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKfp:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posted(self, path: str) -> list[dict[str, Any]]:
        return [r[2] for r in self.requests if r[0] == "POST" and r[1] == f"{PREFIX}/{path}"]


def _filter_name(query: dict[str, list[str]]) -> str | None:
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    for predicate in json.loads(raw).get("predicates", []):
        return predicate.get("string_value") or predicate.get("stringValue")
    return None
