"""The LLM interface shared by every backend (``openai``, ``transformers``, ``vllm``).

A backend turns conversations (lists of ``{"role", "content"}`` messages) into
:class:`Completion` objects, one per conversation, in order. It never raises for one item's
failure: the Completion carries ``error`` instead, so the caller can record a reject. Errors
that are the user's fault (bad key, unreachable server, unknown model, missing package) are
raised as one-line :class:`~dsbuild.errors.DsbuildError`.

Answers are cached on disk (:mod:`dsbuild.llm.cache`) under a hash of everything that decides
them, so a resumed build does not ask again; a cached answer never counts as a request.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.errors import ConfigError, DsbuildError

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
"""One conversation: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""
Compute = Callable[[list[Messages], Callable[[int, "Completion"], None]], list["Completion"]]
"""How a backend answers cache misses: ``compute(todo, done)`` (see :meth:`LLM._chat_cached`)."""


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters. ``temperature == 0`` means greedy (deterministic)."""

    temperature: float = 0.0
    max_tokens: int = 32
    top_p: float = 1.0
    n: int = 1  # samples per prompt (self-consistency)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (part of the cache key and of provenance)."""
        return asdict(self)


@dataclass
class Completion:
    """The answer(s) to one conversation."""

    texts: list[str]  # n answers (raw text); [] when error is set
    cached: bool = False
    error: str | None = None  # e.g. "timeout after 5 attempts"; set only when the item finally failed
    truncated: bool = False  # the prompt was cut to fit max_input_tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the cache stores ``texts`` and ``truncated`` only)."""
        return asdict(self)


@dataclass
class Usage:
    """Counters per backend instance; merged into build facts."""

    requests: int = 0  # calls that reached the model (a cache hit is not a request)
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0  # items whose Completion has error set
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters, thread-safe (the openai backend counts from worker threads)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + int(value))

    def to_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return {k: int(getattr(self, k)) for k in
                ("requests", "retries", "cache_hits", "failures", "prompt_tokens", "completion_tokens")}


class LLM(ABC):
    """One interface for every backend.

    Args:
        model: model id or path (``transformers``, ``vllm``) or the server's model name (``openai``).
        revision: model revision, recorded and part of the cache key.
        cache_dir: directory of the answer cache; default ``$DSBUILD_CACHE/llm``.
        options: backend options; every backend accepts ``cache`` (default ``True``; ``False``
            disables the disk cache).
    """

    name: str = "llm"

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
                 **options: Any) -> None:
        if not model:
            raise ConfigError(f"LLM backend {self.name!r} needs a model (option model=...)")
        self.model = model
        self.revision = revision
        self.usage = Usage()
        use_cache = options.pop("cache", True)
        self._cache_dir = cache_dir
        self._cache: Any = None
        if use_cache:
            from dsbuild.llm.cache import LLMCache  # local: keeps base importable on its own

            self._cache = LLMCache(cache_dir)
        self.options = options

    # -- the interface ---------------------------------------------------------------------
    @abstractmethod
    def chat(self, messages: Sequence[Messages], sampling: Sampling, *, choices: Sequence[str] | None = None,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        """One Completion per conversation, in order.

        ``choices``: a closed label set; backends that can constrain decoding (vllm guided choice,
        openai json_schema enum where supported) do. ``json_schema``: ask for JSON output of that
        schema where supported. The texts are raw: the caller parses and validates them.
        """

    def score_choices(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[dict[str, float]]:
        """Log-probability of each choice as the answer, one dict per conversation."""
        raise DsbuildError(
            f"LLM backend {self.name!r} cannot score choices; use backend transformers, or chat() with choices")

    def choose(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[Completion]:
        """The most likely choice per conversation (ties: the earlier choice), as one-answer Completions.

        By default the argmax of :meth:`score_choices`; backends may answer from their cache and
        report truncation (``transformers`` does).
        """
        labels = list(choices)
        out = []
        for scored in self.score_choices(messages, labels):
            best = max(labels, key=lambda c: (scored[c], -labels.index(c)))
            out.append(Completion(texts=[best]))
        return out

    def model_id(self) -> str:
        """The id that identifies the weights answering (server model id for servers)."""
        return self.revision and f"{self.model}@{self.revision}" or self.model

    def describe(self) -> dict[str, Any]:
        """Backend, model and revision, recorded in provenance (no secrets, no local paths)."""
        return {"backend": self.name, "model": self.model, "revision": self.revision}

    def close(self) -> None:
        """Release resources (HTTP pool, model, cache connection)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared machinery for backends --------------------------------------------------
    def _cache_namespace(self) -> dict[str, Any]:
        """What, besides the request, decides an answer: backend, model, revision or server id."""
        return {"backend": self.name, "model": self.model, "model_id": self.model_id()}

    def _chat_cached(self, messages: Sequence[Messages], sampling: Sampling, choices: Sequence[str] | None,
                     json_schema: dict[str, Any] | None, compute: Compute) -> list[Completion]:
        """Answer from the cache where possible; ``compute`` the misses; store successful answers.

        ``compute(todo, done)`` answers the conversations ``todo`` in order and may call
        ``done(i, completion)`` as soon as ``todo[i]`` is answered, so that answers reach the cache
        while the rest is still running (a killed build keeps them).
        """
        messages = [list(m) for m in messages]
        if self._cache is None:
            out = compute(messages, lambda i, c: None)
            self._count_failures(out)
            return out
        from dsbuild.llm.cache import cache_key

        ns = self._cache_namespace()
        keys = [cache_key(ns, sampling.to_dict(), choices, json_schema, m) for m in messages]
        found = self._cache.get_many(keys)
        self.usage.add(cache_hits=sum(1 for k in keys if k in found))
        todo = [i for i, k in enumerate(keys) if k not in found]
        stored: set[int] = set()
        lock = threading.Lock()

        def done(j: int, completion: Completion) -> None:
            with lock:
                if j in stored or completion.error is not None:
                    return
                stored.add(j)
            self._cache.put_many([(keys[todo[j]], completion)])

        computed = compute([messages[i] for i in todo], done) if todo else []
        self._count_failures(computed)
        self._cache.put_many((keys[todo[j]], c) for j, c in enumerate(computed) if j not in stored and c.error is None)
        by_index = dict(zip(todo, computed))
        return [by_index[i] if i in by_index else found[k] for i, k in enumerate(keys)]

    def _count_failures(self, completions: Sequence[Completion]) -> None:
        self.usage.add(failures=sum(1 for c in completions if c.error is not None))


def make_llm(name: str, model: str, **options: Any) -> LLM:
    """Build the backend registered as ``name`` (one clear line on an unknown name)."""
    from dsbuild.registry import llms

    factory = llms.get(name)
    return factory(model, **options)
