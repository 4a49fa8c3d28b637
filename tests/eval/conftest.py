"""Fixtures of the evaluation tests: one METEOR JVM per session, and a local chat-completions server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pite.eval.caption_scorers import MeteorScorer, find_java


@pytest.fixture(scope="session")
def meteor():
    """A METEOR scorer shared by the whole session: its JVM start-up (paraphrase table) takes ~10 s."""
    if find_java() is None:
        pytest.skip("java is not on PATH")
    scorer = MeteorScorer()
    yield scorer
    scorer.close()


@pytest.fixture
def requires_java():
    if find_java() is None:
        pytest.skip("java is not on PATH")


@pytest.fixture
def no_java(monkeypatch, tmp_path):
    """PATH without any java executable."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_java() is None


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 (ephemeral port) whose behaviour each test scripts.

    `respond(request_body) -> (status, body_bytes, delay_seconds)` decides every answer; by default the judge says
    yes with score 5 when the predicted answer equals the correct one, else no with score 1. Every request's body
    and headers are kept in `requests`.
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.respond = self.default_respond
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                status, payload, delay = server.respond(body)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @staticmethod
    def completion(content: str) -> bytes:
        return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()

    @classmethod
    def default_respond(cls, body: dict) -> tuple[int, bytes, float]:
        user = body["messages"][1]["content"]
        answer = user.split("Correct Answer: ")[1].split("\n")[0]
        prediction = user.split("Predicted Answer: ")[1].split("\n")[0]
        reply = "{'pred': 'yes', 'score': 5}" if answer == prediction else "{'pred': 'no', 'score': 1}"
        return 200, cls.completion(reply), 0.0

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()
