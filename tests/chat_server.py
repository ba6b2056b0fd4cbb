"""An OpenAI-compatible chat server on 127.0.0.1 that answers well or badly, for the chat-agent tests.

Every request is recorded (path, Authorization header, body) with the number in flight;
`fail_first` answers the first request with HTTP 500; every answer waits `delay` seconds.
A request with a JSON-schema `response_format` gets {"choice": ...} (the option must be in the
schema's enum), or HTTP 400 with `refuse_schema` (a server without structured output).
Modes: ok (the first listed option, or a line of speech), drip (headers, then one byte every
half second), hang (reads the request, never answers), huge (a 2 MB reply), long (a valid
reply whose content is 20,000 characters), bad_usage (a valid answer with a malformed usage
block), garbage (answers that name no option).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_OPTIONS = re.compile(r"Options: ([^.]*)\.")


def answer_for(messages: list[dict]) -> str:
    prompt = messages[-1]["content"]
    m = _OPTIONS.search(prompt)
    return m.group(1).split(",")[0].strip() if m else "I am a villager, and I trust the seer."


class ChatServer:
    def __init__(self, mode: str = "ok", delay: float = 0.0, fail_first: bool = False, refuse_schema: bool = False):
        self.mode, self.delay, self.fail_first, self.refuse_schema = mode, delay, fail_first, refuse_schema
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.stop = threading.Event()
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                            "body": body})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self.respond(body)
                finally:
                    with lock:
                        server.in_flight -= 1

            def respond(self, body: dict) -> None:
                mode = server.mode
                if server.fail_first and len(server.requests) == 1:
                    self.send_response(500)
                    self.end_headers()
                    return
                schema = body.get("response_format")
                if schema is not None and server.refuse_schema:
                    self.send_response(400)  # a server without structured output
                    self.end_headers()
                    return
                if mode == "hang":
                    server.stop.wait(60)
                    return
                if mode == "drip":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    for _ in range(600):  # five minutes at most, unless the client gives up
                        if server.stop.is_set():
                            return
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.5)
                    return
                time.sleep(server.delay)
                content = answer_for(body["messages"])
                if schema is not None:  # structured output: the schema's enum must be the options offered
                    enum = schema["json_schema"]["schema"]["properties"]["choice"]["enum"]
                    assert content in enum, (content, enum)
                    content = json.dumps({"choice": content})
                usage: object = {"prompt_tokens": 50, "completion_tokens": 5}
                if mode == "garbage":
                    content = "I would rather not say."
                elif mode == "long":
                    content = "x" * 20_000
                elif mode == "bad_usage":
                    usage = {"prompt_tokens": "many", "completion_tokens": -4}
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}], "usage": usage}
                data = json.dumps(reply).encode()
                if mode == "huge":
                    data = b'{"choices": [{"message": {"content": "' + b"y" * (2 << 20) + b'"}}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def closed_port() -> Iterator[int]:
    """A local port with nothing listening on it. The port stays bound (never listening) while
    the block runs, so connections to it are refused and no other process (a second test worker's
    server, Ray) can start listening there meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
