"""The offline vLLM engine (backend ``vllm``): ``vllm.LLM(model).chat(conversations, SamplingParams)``.

Needs ``pip install vllm`` and a GPU. A closed label set (``choices``) is enforced with vLLM's
structured outputs (``StructuredOutputsParams(choice=...)``; ``GuidedDecodingParams`` on vLLM
releases before it), so every answer is one of the labels; ``json_schema`` likewise with
``json=``. Without a GPU, run ``vllm serve MODEL`` elsewhere and use backend ``openai``.

Options: ``max_input_tokens`` (vLLM's ``truncate_prompt_tokens``: longer prompts keep their
end), and any ``vllm.LLM`` engine argument (``tensor_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``dtype``, ``trust_remote_code``...), passed through as given.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.llm.base import LLM, Completion, Messages, Sampling
from dsbuild.registry import llms

log = logging.getLogger(__name__)

NOT_INSTALLED = ("vllm is not installed: pip install vllm (needs a GPU); or run `vllm serve MODEL` and use"
                 " backend openai with base_url http://HOST:8000/v1")


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError:
        raise DsbuildError(NOT_INSTALLED) from None


def structured_params(vllm: Any, *, choices: Sequence[str] | None, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """``SamplingParams`` keyword for a constraint: ``structured_outputs=`` (current vLLM) or
    ``guided_decoding=`` (releases before v0.11); empty without a constraint."""
    if choices is None and json_schema is None:
        return {}
    spec = {"choice": list(choices)} if choices is not None else {"json": json_schema}
    sp = importlib.import_module("vllm.sampling_params")
    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(**spec)}
    if hasattr(sp, "GuidedDecodingParams"):
        return {"guided_decoding": sp.GuidedDecodingParams(**spec)}
    raise DsbuildError(f"this vllm ({getattr(vllm, '__version__', '?')}) has no structured output parameters;"
                       " upgrade vllm")


def sampling_params(vllm: Any, sampling: Sampling, *, choices: Sequence[str] | None = None,
                    json_schema: dict[str, Any] | None = None, max_input_tokens: int | None = None) -> Any:
    """The ``vllm.SamplingParams`` for one :class:`Sampling` and constraint."""
    kwargs: dict[str, Any] = {"n": sampling.n, "temperature": sampling.temperature, "top_p": sampling.top_p,
                              "max_tokens": sampling.max_tokens, "seed": sampling.seed}
    if max_input_tokens is not None:
        kwargs["truncate_prompt_tokens"] = int(max_input_tokens)
    kwargs.update(structured_params(vllm, choices=choices, json_schema=json_schema))
    return vllm.SamplingParams(**kwargs)


@llms.register("vllm")
class VLLMLLM(LLM):
    """Batched offline generation with vLLM."""

    name = "vllm"

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
                 **options: Any) -> None:
        self._vllm = _import_vllm()  # first: a missing vllm is the one line the user needs
        super().__init__(model, revision=revision, cache_dir=cache_dir, **options)
        engine_args = dict(self.options)
        self.max_input_tokens = engine_args.pop("max_input_tokens", None)
        if self.max_input_tokens is not None and int(self.max_input_tokens) < 1:
            raise ConfigError(f"max_input_tokens must be >= 1, got {self.max_input_tokens}")
        self.engine_args = engine_args
        try:
            self._engine = self._vllm.LLM(model=model, revision=revision, **engine_args)
        except TypeError as exc:
            raise ConfigError(f"bad option for LLM backend vllm: {exc}") from None

    def describe(self) -> dict[str, Any]:
        local = Path(self.model).is_dir()
        return {"backend": self.name, "model": Path(self.model).name if local else self.model,
                "revision": self.revision, "vllm_version": getattr(self._vllm, "__version__", None),
                "max_input_tokens": self.max_input_tokens}

    def chat(self, messages: Sequence[Messages], sampling: Sampling, *, choices: Sequence[str] | None = None,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        """Generate for all conversations in one engine call (vLLM batches internally)."""
        if choices is not None and not choices:
            raise ConfigError("choices is empty: give at least one label")
        params = sampling_params(self._vllm, sampling, choices=choices, json_schema=json_schema,
                                 max_input_tokens=self.max_input_tokens)

        def compute(todo: list[Messages], done: Callable[[int, Completion], None]) -> list[Completion]:
            outputs = self._engine.chat(todo, params, use_tqdm=False)
            self.usage.add(requests=len(todo))
            return [self._completion(o) for o in outputs]

        return self._chat_cached(messages, sampling, choices, json_schema, compute)

    def _completion(self, output: Any) -> Completion:
        prompt_ids = list(getattr(output, "prompt_token_ids", None) or [])
        answers = list(output.outputs)
        self.usage.add(prompt_tokens=len(prompt_ids),
                       completion_tokens=sum(len(getattr(a, "token_ids", None) or []) for a in answers))
        cut = self.max_input_tokens is not None and len(prompt_ids) >= int(self.max_input_tokens)
        return Completion(texts=[a.text.strip() for a in answers], truncated=cut)

    def close(self) -> None:
        self._engine = None
        super().close()
