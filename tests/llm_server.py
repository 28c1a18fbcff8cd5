"""A loopback OpenAI-compatible chat-completions server for tests, with fault injection.

:class:`FakeLLMServer` listens on ``127.0.0.1`` (port 0: the system picks a free one) and answers
``POST /v1/chat/completions`` and ``GET /v1/models`` like vLLM's server does. Answers come from
an ``answer`` callable, normally the tiny topic LM through the ``transformers`` backend (see
``tests/plugins/tiny_lm.py``), so labels are learned, not scripted. With a ``response_format``
whose schema has an ``enum`` property, the answer is the best-scoring label of the enum as
``{"<property>": label}`` (what a server with guided decoding returns).

Faults are queued with :meth:`FakeLLMServer.inject` and consumed one per chat request (optionally
only by requests whose prompt contains ``match``): ``429`` (with ``Retry-After``), ``500``,
``timeout`` (sleeps ``seconds`` before answering, past the client's timeout), ``truncated`` (a
body cut in the middle of its JSON), ``out_of_schema`` (an answer outside the label set),
``401``, ``400`` (with ``message`` as the server's error text, e.g. a context-length error).
Setting ``api_key`` makes every request without that bearer key get 401;
``reject_response_format`` makes requests with ``response_format`` get 400 (``"json_schema"``: only that
type, as a server with JSON mode but no schemas does); ``delay`` slows every
answer (to observe concurrency). Counters: :meth:`requests_for`, ``total_requests``,
``max_in_flight``. Every handler's wait is bounded; :meth:`stop` shuts the server down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[list[dict[str, str]], dict[str, Any], list[str] | None], list[str]]
"""(messages, sampling params of the request, enum labels or None) -> n answer texts."""

MAX_SLEEP = 10.0  # no handler ever waits longer than this


@dataclass
class Fault:
    """One queued failure: ``kind`` for the next ``count`` matching chat requests."""

    kind: str
    count: int = 1
    match: str | None = None
    retry_after: float | None = None
    seconds: float = 1.0
    message: str = ""
    times: list[float] = field(default_factory=list)  # when each injection was served


class FakeLLMServer:
    """An OpenAI-compatible server on 127.0.0.1 for tests (see module docstring)."""

    def __init__(self, answer: Answer, *, model: str = "tiny-topic-lm", root: str = "tiny-topic-lm@test") -> None:
        self.answer = answer
        self.model = model
        self.root = root
        self._lock = threading.Lock()
        self._answer_lock = threading.Lock()  # the model answers one request at a time
        self.reset()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear faults, counters and settings (between tests)."""
        with self._lock:
            self.faults: list[Fault] = []
            self.prompts: list[str] = []
            self.bodies: list[dict[str, Any]] = []
            self.request_times: list[float] = []
            self.in_flight = 0
            self.max_in_flight = 0
            self.api_key: str | None = None
            self.reject_response_format: bool | str = False
            self.delay = 0.0

    def inject(self, kind: str, count: int = 1, *, match: str | None = None, retry_after: float | None = None,
               seconds: float = 1.0, message: str = "") -> Fault:
        """Queue ``count`` faults of ``kind`` (see module docstring); returns it (its ``times``)."""
        fault = Fault(kind, count, match, retry_after, min(seconds, MAX_SLEEP), message)
        with self._lock:
            self.faults.append(fault)
        return fault

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def total_requests(self) -> int:
        return len(self.prompts)

    def requests_for(self, text: str) -> int:
        """Chat requests whose prompt (all message contents) contains ``text``."""
        with self._lock:
            return sum(1 for p in self.prompts if text in p)

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=MAX_SLEEP)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------
    def _take_fault(self, prompt: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and (fault.match is None or fault.match in prompt):
                    fault.count -= 1
                    fault.times.append(time.monotonic())
                    return fault
        return None

    def _authorised(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def handle_chat(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body bytes) for one chat request."""
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        with self._lock:
            self.prompts.append(prompt)
            self.bodies.append(body)
            self.request_times.append(time.monotonic())
        if body.get("model") != self.model:
            return _json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                         "type": "NotFoundError", "code": 404}})
        fault = self._take_fault(prompt)
        if fault is not None and fault.kind not in ("out_of_schema",):
            return self._fault_response(fault)
        refused = self.reject_response_format  # True: any response_format; "json_schema": that type only
        if refused and "response_format" in body and \
                (refused is True or body["response_format"].get("type") == refused):
            return _json(400, {"error": {"message": "response_format is not supported", "code": 400}})
        if self.delay:
            time.sleep(min(self.delay, MAX_SLEEP))
        enum_key, enum = _enum_of(body.get("response_format"))
        n = int(body.get("n") or 1)
        if fault is not None:  # out_of_schema
            texts = [json.dumps({enum_key: "weather"}) if enum else "weather"] * n
        else:
            with self._answer_lock:
                texts = self.answer(messages, body, enum)
            if enum:
                texts = [json.dumps({enum_key: t}) for t in texts]
        return _json(200, _completion(self.model, texts, prompt))

    def _fault_response(self, fault: Fault) -> tuple[int, dict[str, str], bytes]:
        if fault.kind == "429":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            status, extra, payload = _json(429, {"error": {"message": "rate limited", "code": 429}})
            return status, {**extra, **headers}, payload
        if fault.kind in ("500", "401", "400"):
            return _json(int(fault.kind), {"error": {"message": fault.message or f"injected {fault.kind}",
                                                     "code": int(fault.kind)}})
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
            return _json(500, {"error": {"message": "late answer", "code": 500}})
        if fault.kind == "truncated":
            status, headers, payload = _json(200, _completion(self.model, ["sport"], ""))
            return status, headers, payload[: len(payload) // 2]
        raise ValueError(f"unknown fault kind {fault.kind!r}")


def _enum_of(response_format: Any) -> tuple[str, list[str] | None]:
    """The first property with an ``enum`` in a json_schema response_format."""
    try:
        schema = response_format["json_schema"]["schema"]
        for key, prop in schema.get("properties", {}).items():
            if isinstance(prop, dict) and isinstance(prop.get("enum"), list):
                return key, [str(x) for x in prop["enum"]]
    except (KeyError, TypeError, AttributeError):
        pass
    return "", None


def _completion(model: str, texts: list[str], prompt: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": sum(len(t.split()) for t in texts),
                      "total_tokens": len(prompt.split()) + sum(len(t.split()) for t in texts)}}


def _json(status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _handler_class(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not server._authorised(self.headers.get("Authorization")):
                return self._send(*_json(401, {"error": {"message": "invalid api key", "code": 401}}))
            if self.path.rstrip("/") == "/v1/models":
                return self._send(*_json(200, {"object": "list", "data": [
                    {"id": server.model, "object": "model", "root": server.root, "owned_by": "dsbuild-tests"}]}))
            self._send(*_json(404, {"error": {"message": "not found", "code": 404}}))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not server._authorised(self.headers.get("Authorization")):
                return self._send(*_json(401, {"error": {"message": "invalid api key", "code": 401}}))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(*_json(404, {"error": {"message": "not found", "code": 404}}))
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._send(*server.handle_chat(json.loads(raw or b"{}")))
            finally:
                with server._lock:
                    server.in_flight -= 1

    return Handler


def tiny_lm_answer(llm: Any) -> Answer:
    """An :data:`Answer` from an LLM backend (the tiny LM): choices are picked by score."""
    from dsbuild.llm.base import Sampling

    def answer(messages: list[dict[str, str]], body: dict[str, Any], enum: list[str] | None) -> list[str]:
        sampling = Sampling(temperature=float(body.get("temperature") or 0.0),
                            max_tokens=int(body.get("max_tokens") or 16), top_p=float(body.get("top_p") or 1.0),
                            n=int(body.get("n") or 1), seed=int(body.get("seed") or 0))
        completion = llm.chat([messages], sampling, choices=enum)[0]
        return completion.texts

    return answer
