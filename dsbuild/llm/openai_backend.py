"""Any OpenAI-compatible chat-completions server over HTTP (backend ``openai``).

Works with OpenAI, a vLLM server (``vllm serve MODEL``), llama.cpp's ``llama-server`` and TGI.
Plain ``httpx``, no SDK. Requests run in a thread pool of ``max_concurrency``; each one is
retried with exponential backoff and jitter on 429, 5xx, timeouts and unreadable bodies,
waiting at least what a ``Retry-After`` header asks, for at most ``max_attempts`` attempts; an
item that still fails gets a Completion with ``error`` set (the caller records a reject), it
never raises. Errors that are the user's fault raise one-line :class:`DsbuildError`: a rejected
API key (401/403), an unreachable server, an unknown model (404, listing the server's models).

Structured output: ``json_schema=`` is sent as ``response_format`` (type ``json_schema``);
``choices=`` as a schema ``{"label": enum}`` whose answer is unwrapped to the bare label. A
server that answers 400 to a ``json_schema`` response format (e.g. gpt-4o-2024-05-13, which has
only JSON mode) is asked again with ``{"type": "json_object"}``, then without ``response_format``;
what worked is remembered, so the refused form is not sent again.

Options (or environment): ``base_url`` (``OPENAI_BASE_URL``, default the OpenAI API),
``api_key`` (``OPENAI_API_KEY``; none is sent when empty, as local servers need none),
``max_concurrency`` (8), ``max_attempts`` (5), ``timeout`` (seconds per request, 120),
``backoff_base`` (seconds, 1.0: waits base, 2 base, 4 base... times a jitter in [0.5, 1.5)),
``backoff_max`` (60), ``structured_output`` (True: send response_format when asked; False: never).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx

from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.llm.base import LLM, Completion, Messages, Sampling
from dsbuild.registry import llms

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHOICE_KEY = "label"
RETRY_AFTER_MAX = 300.0  # a server asking for longer is waited for this long at most
_OPTIONS = {"base_url", "api_key", "max_concurrency", "max_attempts", "timeout", "backoff_base", "backoff_max",
            "structured_output"}


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, unreadable body)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _ItemError(Exception):
    """A failure of this item that retrying will not fix (e.g. 400: prompt too long)."""


@llms.register("openai")
class OpenAILLM(LLM):
    """Chat completions from an OpenAI-compatible server."""

    name = "openai"

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
                 **options: Any) -> None:
        super().__init__(model, revision=revision, cache_dir=cache_dir, **options)
        opts = dict(self.options)
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise ConfigError(f"unknown option(s) for LLM backend openai: {', '.join(sorted(unknown))}"
                              f" (known: {', '.join(sorted(_OPTIONS | {'cache'}))})")
        self.base_url = str(opts.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url {self.base_url!r} must start with http:// or https://"
                              " (e.g. http://localhost:8000/v1)")
        self._key_source = "option api_key" if opts.get("api_key") else "OPENAI_API_KEY"
        api_key = str(opts.get("api_key") or os.environ.get("OPENAI_API_KEY") or "")
        self.max_concurrency = _positive_int(opts, "max_concurrency", 8)
        self.max_attempts = _positive_int(opts, "max_attempts", 5)
        self.timeout = float(opts.get("timeout", 120.0))
        self.backoff_base = float(opts.get("backoff_base", 1.0))
        self.backoff_max = float(opts.get("backoff_max", 60.0))
        # the response_format the server accepts: json_schema, else json_object (JSON mode), else none
        self._structured: str | None = "json_schema" if bool(opts.get("structured_output", True)) else None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=self.timeout,
                                  limits=httpx.Limits(max_connections=self.max_concurrency,
                                                      max_keepalive_connections=self.max_concurrency))
        self._lock = threading.Lock()
        self._server_models: list[dict[str, Any]] | None = None
        self._server_model_id: str | None = None
        self._response_model: str | None = None
        self._probed = False

    # -- server facts ---------------------------------------------------------------------
    def _probe(self) -> None:
        """Ask ``/models`` once: checks key and URL early and records the server's model id."""
        if self._probed:
            return
        with self._lock:
            if self._probed:
                return
            models = self._list_models(strict=True)
            self._server_models = models
            entry = next((m for m in models or [] if m.get("id") == self.model), None)
            if models and entry is None:
                log.warning("model %r is not in the models of %s (%s); the server may still map it",
                            self.model, self.base_url, ", ".join(_ids(models)))
            if entry is not None:  # vLLM's "root" is the weights it loaded: the precise identity
                self._server_model_id = str(entry.get("root") or entry.get("id"))
            self._probed = True

    def _list_models(self, *, strict: bool) -> list[dict[str, Any]] | None:
        try:
            resp = self._http.get(f"{self.base_url}/models")
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            if strict:
                raise self._unreachable(exc) from None
            return None
        if resp.status_code in (401, 403):
            raise self._bad_key(resp.status_code) from None
        if resp.status_code != 200:
            return None  # some servers have no /models; chat may still work
        try:
            data = resp.json().get("data")
        except (ValueError, AttributeError):
            return None
        return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else None

    def model_id(self) -> str:
        self._probe()
        return self._server_model_id or self.model

    def describe(self) -> dict[str, Any]:
        info = {"backend": self.name, "model": self.model, "revision": self.revision,
                "server_model_id": self._server_model_id, "response_model": self._response_model,
                "structured_output": self._structured}
        return info

    # -- errors that stop the build --------------------------------------------------------
    def _unreachable(self, exc: Exception) -> DsbuildError:
        return DsbuildError(f"cannot reach the LLM server at {self.base_url} ({type(exc).__name__}): check that it"
                            " is running and that base_url (or OPENAI_BASE_URL) is right")

    def _bad_key(self, status: int) -> DsbuildError:
        what = "rejected" if status == 401 else "not allowed to use this model/server"
        return DsbuildError(f"LLM server {self.base_url} answered {status}: the API key is {what}; set a valid key in"
                            f" {self._key_source} (or option api_key)")

    def _unknown_model(self) -> DsbuildError:
        models = self._server_models if self._server_models is not None else self._list_models(strict=False)
        served = f"it serves: {', '.join(_ids(models))}" if models else "it lists no models"
        return DsbuildError(f"LLM server {self.base_url} answered 404 for model {self.model!r} ({served}); set option"
                            " model to one of them, and check that base_url ends with /v1")

    # -- chat ------------------------------------------------------------------------------
    def chat(self, messages: Sequence[Messages], sampling: Sampling, *, choices: Sequence[str] | None = None,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        """One Completion per conversation, asked concurrently; failures become ``error``."""
        if choices is not None and not choices:
            raise ConfigError("choices is empty: give at least one label")
        self._probe()
        choice_list = list(choices) if choices is not None else None

        def compute(todo: list[Messages], done: Callable[[int, Completion], None]) -> list[Completion]:
            ask = lambda j: self._ask(todo[j], sampling, choice_list, json_schema)  # noqa: E731
            if len(todo) <= 1 or self.max_concurrency == 1:
                return [_then(ask(j), done, j) for j in range(len(todo))]
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(todo)),
                                    thread_name_prefix="dsbuild-llm") as pool:
                futures = {pool.submit(ask, j): j for j in range(len(todo))}
                results: dict[int, Completion] = {}
                try:
                    for future in as_completed(futures):  # in this thread: the cache's connection lives here
                        results[futures[future]] = _then(future.result(), done, futures[future])
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
            return [results[j] for j in range(len(todo))]

        return self._chat_cached(messages, sampling, choice_list, json_schema, compute)

    def _ask(self, messages: Messages, sampling: Sampling, choices: list[str] | None,
             json_schema: dict[str, Any] | None) -> Completion:
        """One item with retries; a DsbuildError (user's fault) propagates, anything else is recorded."""
        last = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.usage.add(retries=1)
            try:
                return self._request(messages, sampling, choices, json_schema)
            except _ItemError as exc:
                return Completion(texts=[], error=str(exc))
            except _Transient as exc:
                last = exc.reason
                if attempt < self.max_attempts:
                    time.sleep(self._delay(attempt, exc.retry_after))
            except httpx.ConnectError as exc:  # connection refused: the server went away
                last = f"connection error ({type(exc).__name__})"
                if attempt == self.max_attempts:
                    raise self._unreachable(exc) from None
                time.sleep(self._delay(attempt, None))
        return Completion(texts=[], error=f"{last} after {self.max_attempts} attempts")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random())
        if retry_after is not None:
            return max(backoff, min(retry_after, RETRY_AFTER_MAX))
        return backoff

    def _payload(self, messages: Messages, sampling: Sampling, choices: list[str] | None,
                 json_schema: dict[str, Any] | None, structured: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "n": sampling.n,
                                "seed": sampling.seed}
        schema = _response_schema(choices, json_schema)
        if schema is not None and structured == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif schema is not None and structured == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _request(self, messages: Messages, sampling: Sampling, choices: list[str] | None,
                 json_schema: dict[str, Any] | None) -> Completion:
        structured = self._structured
        body = self._payload(messages, sampling, choices, json_schema, structured)
        resp = self._post(body)
        while resp.status_code == 400 and "response_format" in body:  # json_schema -> json_object -> none
            refused = resp
            structured = "json_object" if structured == "json_schema" else None
            body = self._payload(messages, sampling, choices, json_schema, structured)
            resp = self._post(body)
            if resp.status_code == 200:  # it was the response format the server refused, not this item
                self._downgrade_structured(structured, refused)
        data = self._check(resp)
        texts = _texts(data)
        if choices is not None and "response_format" in body:
            texts = [_unwrap_choice(t) for t in texts]
        usage = data.get("usage") or {}
        self.usage.add(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or 0))
        if data.get("model") and self._response_model is None:
            self._response_model = str(data["model"])
        return Completion(texts=texts)

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        self.usage.add(requests=1)
        try:
            return self._http.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.TimeoutException:
            raise _Transient(f"timeout ({self.timeout:g} s)") from None
        except httpx.ConnectError:
            raise  # nobody listening: retried, then reported as an unreachable server
        except httpx.TransportError as exc:  # connection dropped mid-answer
            raise _Transient(f"broken response ({type(exc).__name__})") from None

    def _downgrade_structured(self, accepted: str | None, resp: httpx.Response) -> None:
        levels = ("json_schema", "json_object", None)
        with self._lock:
            if levels.index(accepted) > levels.index(self._structured):
                log.warning("%s rejected response_format %s (400: %s); asking with %s from now on", self.base_url,
                            self._structured, _error_text(resp), accepted or "no response_format")
                self._structured = accepted

    def _check(self, resp: httpx.Response) -> dict[str, Any]:
        """The parsed body of a good answer; raises by kind of failure."""
        code = resp.status_code
        if code in (401, 403):
            raise self._bad_key(code)
        if code == 404:
            raise self._unknown_model()
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code}", _retry_after(resp))
        if code != 200:
            raise _ItemError(f"HTTP {code}: {_error_text(resp)}")
        try:
            data = resp.json()
        except ValueError:
            raise _Transient("unreadable JSON body") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise _Transient("response without choices")
        return data

    def close(self) -> None:
        self._http.close()
        super().close()


def _then(completion: Completion, done: Callable[[int, Completion], None], j: int) -> Completion:
    done(j, completion)  # the answer is cached as soon as it arrives
    return completion


def _positive_int(opts: dict[str, Any], name: str, default: int) -> int:
    value = opts.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ConfigError(f"option {name} must be a positive integer, got {value!r}")
    return number


def _ids(models: list[dict[str, Any]] | None) -> list[str]:
    return [str(m.get("id")) for m in models or []]


def _response_schema(choices: list[str] | None, json_schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``json_schema`` part of ``response_format``: the caller's schema, or ``{"label": enum}``."""
    if json_schema is not None:
        if "schema" in json_schema and "name" in json_schema:  # already in OpenAI's wrapper form
            return json_schema
        return {"name": "answer", "schema": json_schema}
    if choices is not None:
        return {"name": "label", "strict": True, "schema": {
            "type": "object", "properties": {CHOICE_KEY: {"type": "string", "enum": choices}},
            "required": [CHOICE_KEY], "additionalProperties": False}}
    return None


def _unwrap_choice(text: str) -> str:
    """``{"label": "x"}`` (or any one-key object of a string) -> ``x``; anything else unchanged (the caller
    validates)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get(CHOICE_KEY), str):
        return str(data[CHOICE_KEY])
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), str):
        return str(next(iter(data.values())))  # JSON mode: the model chose its own key ({"topic": "x"})
    return text


def _texts(data: dict[str, Any]) -> list[str]:
    out = []
    for choice in data["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        out.append(content if isinstance(content, str) else "")
    return out


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), if any."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(resp: httpx.Response) -> str:
    """The server's error message, shortened to one line."""
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        text = err.get("message", json.dumps(err)) if isinstance(err, dict) else str(err)
    except ValueError:
        text = resp.text
    text = " ".join(str(text).split())
    return text[:200] + ("…" if len(text) > 200 else "")
