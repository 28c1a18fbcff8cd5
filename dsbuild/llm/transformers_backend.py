"""A local causal LM through Hugging Face ``transformers`` (backend ``transformers``).

Prompts are rendered with the tokenizer's chat template (a plain ``role: content`` template when
it has none) and generated in left-padded batches: greedy at temperature 0, seeded sampling
otherwise (each prompt with its own seed derived from ``Sampling.seed`` and the prompt, so an
answer does not depend on which other prompts share its batch). :meth:`score_choices` gives the
log-probability of each label as the answer, so a closed label set has no parse failures;
``chat(..., choices=...)`` uses it to pick (greedy) or sample (temperature > 0) a label.

Options: ``device`` (default ``cpu``), ``dtype`` (``float32``, ``bfloat16``...), ``batch_size``
(8), ``max_input_tokens`` (prompts longer than this are cut in the middle of their longest
message; the Completion says ``truncated``; whatever the option, a prompt is always cut to fit
the model's context window, less the room the answer needs, so an over-long text is flagged, not
an indexing error), ``threads`` (torch CPU threads while running),
``score_with_eos`` (True: a label's score includes the end-of-answer token, so ``sport`` and
``sports`` differ), ``trust_remote_code`` (False).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.llm.base import LLM, Completion, Messages, Sampling
from dsbuild.registry import llms

log = logging.getLogger(__name__)

FALLBACK_TEMPLATE_NOTE = "tokenizer has no chat template; using 'role: content' lines"


def _local_model_id(path: Path) -> str:
    """``<folder>@<hash of config and weight files>``: no local path, and changes when the weights do."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*")):
        if f.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"} and f.is_file():
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            with f.open("rb") as fh:
                h.update(fh.read(1 << 20))  # first MiB: enough to tell retrained weights apart, cheap on big ones
    return f"{path.name}@{h.hexdigest()[:12]}"


@llms.register("transformers")
class TransformersLLM(LLM):
    """A causal LM loaded with ``AutoModelForCausalLM.from_pretrained``."""

    name = "transformers"

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
                 **options: Any) -> None:
        super().__init__(model, revision=revision, cache_dir=cache_dir, **options)
        opts = dict(self.options)
        self.device = str(opts.pop("device", "cpu"))
        self.batch_size = int(opts.pop("batch_size", 8))
        self.max_input_tokens = opts.pop("max_input_tokens", None)
        self.threads = opts.pop("threads", None)
        self.score_with_eos = bool(opts.pop("score_with_eos", True))
        dtype = opts.pop("dtype", None)
        trust = bool(opts.pop("trust_remote_code", False))
        if opts:
            raise ConfigError(f"unknown option(s) for LLM backend transformers: {', '.join(sorted(opts))}"
                              " (known: device, dtype, batch_size, max_input_tokens, threads, score_with_eos,"
                              " trust_remote_code, cache)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        self._model, self._tok = self._load(dtype, trust)
        local = Path(model)
        self._model_id = _local_model_id(local) if local.is_dir() else (
            f"{model}@{revision}" if revision else model)
        self._has_template = bool(getattr(self._tok, "chat_template", None))
        self.context = _context_length(self._model.config, self._tok)
        if not self._has_template:
            log.warning("%s: %s", model, FALLBACK_TEMPLATE_NOTE)

    def _load(self, dtype: str | None, trust: bool) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {"revision": self.revision, "trust_remote_code": trust}
        if dtype:
            if not hasattr(torch, str(dtype)):
                raise ConfigError(f"dtype {dtype!r} is not a torch dtype (try float32, bfloat16, float16)")
            kwargs["dtype"] = getattr(torch, str(dtype))
        try:
            tok = AutoTokenizer.from_pretrained(self.model, revision=self.revision, trust_remote_code=trust)
            model = AutoModelForCausalLM.from_pretrained(self.model, **kwargs)
        except OSError as exc:
            raise DsbuildError(
                f"cannot load model {self.model!r} for LLM backend transformers: {str(exc).splitlines()[0]}"
                " (give a local folder, or a Hub id that is in the local Hugging Face cache)") from None
        tok.padding_side = "left"
        if tok.pad_token_id is None:  # many causal LMs ship without one; eos is the usual stand-in
            tok.pad_token = tok.eos_token
        return model.to(self.device).eval(), tok

    def model_id(self) -> str:
        return self._model_id

    def describe(self) -> dict[str, Any]:
        local = Path(self.model).is_dir()
        return {"backend": self.name, "model": Path(self.model).name if local else self.model,
                "revision": self.revision, "model_id": self._model_id,
                "chat_template": "tokenizer" if self._has_template else "fallback",
                "max_input_tokens": self.max_input_tokens, "context": self.context}

    # -- prompts ----------------------------------------------------------------------------
    def _render(self, messages: Messages) -> str:
        if self._has_template:
            return str(self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def _limit(self, reserve: int) -> int | None:
        """Most prompt tokens allowed: ``max_input_tokens`` and the context less ``reserve`` answer tokens."""
        limits = [int(self.max_input_tokens)] if self.max_input_tokens is not None else []
        if self.context is not None:
            room = self.context - reserve
            if room < 8:
                raise ConfigError(f"model {Path(self.model).name!r} has a context of {self.context} tokens: no room "
                                  f"for a prompt and {reserve} answer tokens; lower max_tokens")
            limits.append(room)
        return min(limits) if limits else None

    def _encode(self, messages: Messages, reserve: int = 0) -> tuple[list[int], bool]:
        """Token ids of the rendered prompt, cut to fit (see :meth:`_limit`); and whether it was cut."""
        ids = self._ids(self._render(messages))
        limit = self._limit(reserve)
        if limit is None or len(ids) <= limit:
            return ids, False
        msgs = [dict(m) for m in messages]
        for _ in range(4):  # cutting text changes token counts a little: a few rounds converge
            longest = max(range(len(msgs)), key=lambda i: len(msgs[i]["content"]))
            content = self._ids(msgs[longest]["content"], special=False)
            keep = len(content) - (len(ids) - limit) - 4
            if keep <= 0:
                break
            head, tail = content[: keep // 2], content[len(content) - (keep - keep // 2):]
            msgs[longest]["content"] = (self._tok.decode(head) + " … " + self._tok.decode(tail))
            ids = self._ids(self._render(msgs))
            if len(ids) <= limit:
                return ids, True
        return ids[-limit:], True  # the template alone is too long: keep the end (the answer cue)

    def _ids(self, text: str, special: bool | None = None) -> list[int]:
        add = (not self._has_template) if special is None else special
        return list(self._tok(text, add_special_tokens=add)["input_ids"])

    @contextmanager
    def _torch_threads(self) -> Iterator[None]:
        import torch

        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            with torch.inference_mode():
                yield
        finally:
            torch.set_num_threads(old)

    # -- chat -----------------------------------------------------------------------------
    def chat(self, messages: Sequence[Messages], sampling: Sampling, *, choices: Sequence[str] | None = None,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        """Generate (or, with ``choices``, pick by score) one Completion per conversation."""
        if choices is not None and not choices:
            raise ConfigError("choices is empty: give at least one label")

        def compute(todo: list[Messages], done: Callable[[int, Completion], None]) -> list[Completion]:
            out: list[Completion] = []
            for start in range(0, len(todo), self.batch_size):  # cache each batch as soon as it is done
                batch = todo[start : start + self.batch_size]
                if choices is not None:
                    answers = self._choose(batch, list(choices), sampling)
                elif sampling.temperature > 0:
                    answers = [self._sample_one(m, sampling) for m in batch]
                else:
                    answers = self._generate_greedy(batch, sampling)
                for j, c in enumerate(answers, start):
                    done(j, c)
                out += answers
            return out

        return self._chat_cached(messages, sampling, choices, json_schema, compute)

    def _generate_greedy(self, todo: list[Messages], sampling: Sampling) -> list[Completion]:
        if sampling.n > 1:
            log.info("n=%d at temperature 0: greedy decoding gives %d identical answers", sampling.n, sampling.n)
        out: list[Completion] = []
        for start in range(0, len(todo), self.batch_size):
            encoded = [self._encode(m, sampling.max_tokens) for m in todo[start : start + self.batch_size]]
            texts = self._generate([ids for ids, _ in encoded], sampling, do_sample=False, n=1)
            out += [Completion(texts=[t] * sampling.n, truncated=cut) for t, (_, cut) in zip(texts, encoded)]
        self.usage.add(requests=len(todo))
        return out

    def _sample_one(self, messages: Messages, sampling: Sampling) -> Completion:
        import torch

        ids, cut = self._encode(messages, sampling.max_tokens)
        torch.manual_seed(_item_seed(sampling.seed, messages))  # per prompt: batch layout does not matter
        texts = self._generate([ids], sampling, do_sample=True, n=sampling.n)
        self.usage.add(requests=1)
        return Completion(texts=texts, truncated=cut)

    def _generate(self, batch: list[list[int]], sampling: Sampling, *, do_sample: bool, n: int) -> list[str]:
        """Texts of ``n`` answers per prompt (flattened in prompt order)."""
        import torch

        x, mask = self._pad(batch)
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "do_sample": do_sample,
                                  "pad_token_id": self._tok.pad_token_id, "num_return_sequences": n}
        if do_sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._torch_threads():
            out = self._model.generate(input_ids=x, attention_mask=mask, **kwargs)
        new = out[:, x.shape[1]:]
        eos = self._eos_ids()
        lengths = [_answer_length(row.tolist(), eos, self._tok.pad_token_id) for row in new]
        self.usage.add(prompt_tokens=int(mask.sum()) * n, completion_tokens=sum(lengths))
        texts = self._tok.batch_decode(new, skip_special_tokens=True)
        return [t.strip() for t in texts]

    def _eos_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tok.eos_token_id is not None:
            ids.add(self._tok.eos_token_id)
        return ids

    def _pad(self, batch: list[list[int]]) -> tuple[Any, Any]:
        import torch

        length = max(len(ids) for ids in batch)
        x = torch.full((len(batch), length), self._tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for r, ids in enumerate(batch):
            if ids:
                x[r, length - len(ids):] = torch.tensor(ids)
                mask[r, length - len(ids):] = 1
        return x.to(self.device), mask.to(self.device)

    # -- scoring --------------------------------------------------------------------------
    def score_choices(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[dict[str, float]]:
        """Sum of the log-probabilities of each choice's tokens after the prompt (batched)."""
        scores, _ = self._score([list(m) for m in messages], list(choices))
        self.usage.add(requests=len(messages))
        return scores

    def choose(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[Completion]:
        """The best-scoring choice per conversation: ``chat`` with ``choices`` at temperature 0, so the
        answers are cached and a prompt cut to fit the context is flagged ``truncated``."""
        return self.chat(messages, Sampling(temperature=0.0, max_tokens=1), choices=choices)

    def _score(self, messages: list[Messages], choices: list[str]) -> tuple[list[dict[str, float]], list[bool]]:
        if not choices:
            raise ConfigError("choices is empty: give at least one label")
        eos = [self._tok.eos_token_id] if self.score_with_eos and self._tok.eos_token_id is not None else []
        conts = [self._ids(c, special=False) + eos for c in choices]
        encoded = [self._encode(m, max(len(c) for c in conts)) for m in messages]
        pairs = [(p, c) for p in range(len(encoded)) for c in range(len(choices))]
        flat: list[float] = []
        for start in range(0, len(pairs), self.batch_size * len(choices)):
            chunk = pairs[start : start + self.batch_size * len(choices)]
            flat += self._continuation_logprobs([encoded[p][0] for p, _ in chunk], [conts[c] for _, c in chunk])
        k = len(choices)
        scores = [dict(zip(choices, flat[i * k : (i + 1) * k])) for i in range(len(messages))]
        return scores, [cut for _, cut in encoded]

    def _continuation_logprobs(self, prompts: list[list[int]], conts: list[list[int]]) -> list[float]:
        import torch

        x, mask = self._pad([p + c for p, c in zip(prompts, conts)])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with self._torch_threads():
            logits = self._model(input_ids=x, attention_mask=mask, position_ids=pos).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = x[:, 1:]
        token_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        out = []
        for r, c in enumerate(conts):
            out.append(float(token_lp[r, token_lp.shape[1] - len(c):].sum()))  # the last len(c) targets
        self.usage.add(prompt_tokens=int(mask.sum()))
        return out

    def _choose(self, todo: list[Messages], choices: list[str], sampling: Sampling) -> list[Completion]:
        """Closed label set: the best-scoring label (greedy) or labels sampled from the scores."""
        scores, cuts = self._score(todo, choices)
        self.usage.add(requests=len(todo))
        out = []
        for msgs, score, cut in zip(todo, scores, cuts):
            if sampling.temperature <= 0:
                best = max(choices, key=lambda c: (score[c], -choices.index(c)))
                texts = [best] * sampling.n
            else:
                rng = random.Random(_item_seed(sampling.seed, msgs))
                top = max(score.values())
                weights = [math.exp((score[c] - top) / sampling.temperature) for c in choices]
                texts = rng.choices(choices, weights=weights, k=sampling.n)
            out.append(Completion(texts=texts, truncated=cut))
        return out

    def close(self) -> None:
        self._model = None
        super().close()


def _context_length(config: Any, tok: Any) -> int | None:
    """The model's context window in tokens (from its config, else the tokenizer), or None if unknown."""
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tok, "model_max_length", None)
    return int(value) if isinstance(value, int) and 0 < value < 10_000_000 else None  # huge = "unset"


def _item_seed(seed: int, messages: Messages) -> int:
    blob = repr((seed, [(m["role"], m["content"]) for m in messages])).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big")


def _answer_length(row: list[int], eos: set[int], pad: int | None) -> int:
    """Generated tokens up to and including the first end token."""
    for i, t in enumerate(row):
        if t in eos:
            return i + 1
    return sum(1 for t in row if t != pad)
