"""Translator backend on Hugging Face seq2seq models: NLLB-200, M2M100, Marian, mBART-50.

::

    from dsbuild.registry import translators
    mt = translators.get("hf-seq2seq")("facebook/nllb-200-distilled-600M", beam_size=4)
    mt.translate(["The cat sleeps."], "en", "es")          # codes mapped to eng_Latn / spa_Latn
    mt.score(["The cat sleeps."], ["El gato duerme."], "en", "es")   # per-token log-probabilities

Behaviour a user can rely on:

* **Language codes**: ISO 639-1 (``es``), 639-3 (``spa``) or the model's own code (``spa_Latn``,
  ``es_XX``, ``>>spa<<``), mapped per model family (:mod:`dsbuild.translate.langcodes`); an
  unsupported code is a :class:`~dsbuild.errors.ConfigError` that lists close matches.
* **Empty inputs** (empty or whitespace-only) translate to ``""`` without calling the model.
* **Over-long inputs** (more source tokens than the model accepts): with ``long_inputs="split"``
  (default) they are split into sentences, translated one by one and joined with a space; a
  single sentence still too long raises :class:`~dsbuild.errors.InputError` naming the input.
  With ``long_inputs="error"`` any over-long input raises. Builders that prefer a recorded reject
  check :meth:`HFSeq2SeqTranslator.too_long` first.
* **Cache**: every translation is stored in SQLite under a key of model id, revision (commit
  hash, or a hash of the weights for a local folder), generation parameters, languages and text;
  a re-run (or a killed build re-run) translates only what is missing. ``stats`` counts model
  calls and cache hits.
* **Batching**: inputs are sorted by length, translated in batches, returned in input order.
* **Device and dtype**: ``auto`` picks CUDA with bf16 (or fp16) when available, else CPU fp32.
* A model path that does not exist, or a Hub name that cannot be loaded, is a one-line
  ConfigError (no library traceback).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import translators
from dsbuild.translate.cache import TranslationCache, cache_key, default_cache_dir
from dsbuild.translate.langcodes import parse_code, resolve_code

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f\u0964])\s+")
_NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_MBART_CODE = re.compile(r"^[a-z]{2}_[A-Z]{2}$")
_M2M_CODE = re.compile(r"^__([a-z]{2,3})__$")
_MARIAN_CODE = re.compile(r"^>>[a-z]{2,3}(_[A-Z][a-z]{3})?<<$")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by whitespace (keeps the punctuation)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _weights_hash(folder: Path) -> str | None:
    """SHA-256 (first 16 hex digits) of a local model's weight files, as its revision."""
    files = sorted(p for p in folder.iterdir() if p.name in _WEIGHT_FILES or p.name.endswith(".safetensors"))
    if not files:
        return None
    # hashing gigabytes takes seconds: remember the result while the files are unchanged
    return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=32)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]


def _snapshot_commit(path: Path) -> str | None:
    """The commit hash when ``path`` is a Hub cache snapshot folder (``.../snapshots/<hash>``)."""
    if path.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", path.name):
        return path.name
    return None


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads, then restore the previous number."""
    if not n:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@translators.register("hf-seq2seq")
class HFSeq2SeqTranslator:
    """A Hugging Face encoder-decoder translation model (by Hub name or local folder).

    Args:
        model: Hub id (``facebook/nllb-200-distilled-600M``) or path to a saved model folder.
        revision: Hub revision (branch, tag or commit); recorded in provenance.
        beam_size: beams for beam search (1 = greedy).
        sampling: sample instead of searching (seeded with ``seed``; ``top_p``, ``temperature``).
        max_new_tokens: cap on output tokens (default: twice the longest input in the batch + 10,
            within the model's limit).
        max_input_tokens: inputs longer than this (in source tokens, special tokens included) are
            over-long (default: the model's limit).
        long_inputs: ``split`` into sentences, or ``error``.
        batch_size: sentences per forward pass.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        dtype: ``auto``, ``float32``, ``float16``, ``bfloat16``.
        cache: SQLite file or folder for the translation cache; ``None`` = the default folder
            (``$DSBUILD_CACHE/translations``), ``False`` = no cache.
        progress: show a tqdm bar over batches.
        threads: torch CPU threads while this translator runs (``None``: torch's default). Tiny
            models on a busy machine run much faster with 1.
    """

    name = "hf-seq2seq"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        beam_size: int = 4,
        sampling: bool = False,
        top_p: float = 0.9,
        temperature: float = 1.0,
        seed: int = 0,
        max_new_tokens: int | None = None,
        max_input_tokens: int | None = None,
        long_inputs: Literal["split", "error"] = "split",
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
        cache: str | Path | None | Literal[False] = None,
        progress: bool = True,
        threads: int | None = None,
    ) -> None:
        if long_inputs not in ("split", "error"):
            raise ConfigError(f"long_inputs must be 'split' or 'error', not {long_inputs!r}")
        if beam_size < 1 or batch_size < 1:
            raise ConfigError("beam_size and batch_size must be at least 1")
        self.model_id = str(model)
        self.requested_revision = revision
        self.params: dict[str, Any] = {"beam_size": beam_size, "sampling": sampling, "top_p": top_p,
                                       "temperature": temperature, "seed": seed, "max_new_tokens": max_new_tokens,
                                       "long_inputs": long_inputs}
        self.batch_size = batch_size
        self.progress = progress
        self.threads = threads
        self._device_opt, self._dtype_opt = device, dtype
        self._model: Any = None
        self.stats: dict[str, int] = {"model_calls": 0, "translated": 0, "cache_hits": 0, "empty": 0, "split": 0,
                                      "scored": 0}
        self.path = self._locate(self.model_id, revision)
        self.tokenizer = self._load_tokenizer()
        self.family = self._family()
        self.supported_codes = self._supported_codes()
        self.revision = self._revision()
        limits = [v for v in (getattr(self.tokenizer, "model_max_length", None), self._config_value("max_position_embeddings"))
                  if isinstance(v, int) and 0 < v < 1_000_000]
        self.model_max_tokens = min(limits) if limits else 512
        self.max_input_tokens = min(max_input_tokens or self.model_max_tokens, self.model_max_tokens)
        self._cache: TranslationCache | None = None
        if cache is not False:
            cache_path = Path(cache) if cache is not None else default_cache_dir()
            if cache_path.suffix not in (".sqlite", ".db"):
                cache_path = cache_path / "translations.sqlite"
            self._cache = TranslationCache(cache_path)

    # ------------------------------------------------------------------ loading
    @staticmethod
    def _locate(model: str, revision: str | None) -> str:
        """A local folder path, or the Hub id itself; a missing path is a one-line ConfigError."""
        local = Path(model).expanduser()
        if local.exists():
            if not local.is_dir() or not (local / "config.json").is_file():
                raise ConfigError(f"MT model {model!r}: {local} is not a saved model folder (no config.json); "
                                  f"give the folder written by save_pretrained")
            return str(local.resolve())
        # a Hub id is NAME or ORG/NAME; anything else that does not exist is a missing folder
        looks_like_path = model.startswith((".", "/", "~", "\\")) or model.count("/") > 1 or not _HUB_ID.match(model)
        if looks_like_path:
            raise ConfigError(f"MT model path {model!r} does not exist; give an existing model folder or a Hub id "
                              f"such as facebook/nllb-200-distilled-600M")
        return model

    def _load_tokenizer(self) -> Any:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self.path, revision=self.requested_revision)
        except (OSError, ValueError, EnvironmentError) as err:
            raise ConfigError(self._load_error(err)) from None

    def _load_error(self, err: BaseException) -> str:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return (f"cannot load MT model {self.model_id!r}: {first[:200]}"
                + (" (HF_HUB_OFFLINE=1: only models already in the local Hugging Face cache can be used)" if offline else ""))

    def _config_value(self, key: str) -> Any:
        cfg = self._config()
        return getattr(cfg, key, None) if cfg is not None else None

    def _config(self) -> Any:
        if not hasattr(self, "_cfg"):
            try:
                from transformers import AutoConfig

                self._cfg = AutoConfig.from_pretrained(self.path, revision=self.requested_revision)
            except (OSError, ValueError) as err:
                raise ConfigError(self._load_error(err)) from None
        return self._cfg

    @property
    def model(self) -> Any:
        """The loaded ``AutoModelForSeq2SeqLM`` (loaded on first use, in eval mode)."""
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM

            self.device = self._pick_device(torch)
            self.dtype = self._pick_dtype(torch)
            try:
                model = AutoModelForSeq2SeqLM.from_pretrained(self.path, revision=self.requested_revision,
                                                              dtype=self.dtype)
            except (OSError, ValueError) as err:
                raise ConfigError(self._load_error(err)) from None
            self._model = model.to(self.device).eval()
            log.info("loaded %s (%s) on %s as %s", self.model_id, self.revision, self.device, self.dtype)
        return self._model

    def _pick_device(self, torch: Any) -> Any:
        if self._device_opt != "auto":
            return torch.device(self._device_opt)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _pick_dtype(self, torch: Any) -> Any:
        if self._dtype_opt != "auto":
            try:
                return getattr(torch, self._dtype_opt)
            except AttributeError:
                raise ConfigError(f"unknown dtype {self._dtype_opt!r}: use auto, float32, float16 or bfloat16") from None
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32

    def _revision(self) -> str | None:
        local = Path(self.path)
        if local.is_dir():
            return _snapshot_commit(local) or _weights_hash(local)
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(self.model_id, "config.json", revision=self.requested_revision)
            if isinstance(hit, str):
                return _snapshot_commit(Path(hit).parent) or self.requested_revision
        except Exception:  # revision lookup is best effort; the requested revision still names it
            log.debug("no cache snapshot for %s", self.model_id)
        return self.requested_revision

    # ------------------------------------------------------------------ language codes
    def _family(self) -> str:
        cls = type(self.tokenizer).__name__
        model_type = getattr(self._config(), "model_type", "")
        if "Nllb" in cls:
            return "nllb"
        if "M2M100" in cls:
            return "m2m100"
        if "MBart" in cls or model_type == "mbart":
            return "mbart"
        if model_type == "marian":
            vocab = self.tokenizer.get_vocab()
            return "marian-multi" if any(_MARIAN_CODE.match(t) for t in vocab) else "marian"
        return "generic"

    def _supported_codes(self) -> dict[str, list[str]]:
        """``{"source": [...], "target": [...]}``; empty lists mean the model does not say."""
        tok = self.tokenizer
        vocab = list(tok.get_vocab())
        if self.family == "nllb":
            codes = sorted(t for t in vocab if _NLLB_CODE.match(t))
            return {"source": codes, "target": codes}
        if self.family == "m2m100":
            codes = sorted(getattr(tok, "lang_code_to_token", {}) or
                           [m.group(1) for t in vocab if (m := _M2M_CODE.match(t))])
            return {"source": codes, "target": codes}
        if self.family == "mbart":
            codes = sorted(t for t in vocab if _MBART_CODE.match(t))
            return {"source": codes, "target": codes}
        declared = getattr(self._config(), "dsbuild_languages", None)
        if isinstance(declared, dict):
            return {"source": list(declared.get("source", [])), "target": list(declared.get("target", []))}
        if self.family == "marian-multi":
            return {"source": [], "target": sorted(t for t in vocab if _MARIAN_CODE.match(t))}
        m = re.search(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$", self.model_id)
        if m:
            return {"source": [m.group(1)], "target": [m.group(2)]}
        return {"source": [], "target": []}

    def model_code(self, code: str, side: Literal["source", "target"]) -> str | None:
        """The model's own code for ``code`` on one side (None when the model takes no code).

        Raises ConfigError with close matches when the language is not supported.
        """
        supported = self.supported_codes[side]
        if not supported:
            parse_code(code)  # still reject codes that are not language codes at all
            return None
        family = self.family if self.family in ("nllb", "m2m100", "mbart", "marian-multi") else "plain"
        return resolve_code(code, supported, family=family, model=f"{self.model_id} ({side} side)")

    def model_lang_code(self, code: str) -> str | None:
        """The model's language token for ``code`` (NLLB ``spa_Latn``, M2M100 ``es``, mBART ``es_XX``).

        ``None`` for families that put no language token in the sequences (bilingual Marian);
        for multilingual Marian the code goes in front of the source text instead (see
        :meth:`source_batch`), so this also returns ``None``. Used by custom decoders.
        """
        if self.family not in ("nllb", "m2m100", "mbart"):
            return None
        codes = sorted(set(self.supported_codes["source"]) | set(self.supported_codes["target"]))
        return resolve_code(code, codes, family=self.family, model=self.model_id)

    # ------------------------------------------------------------------ encoding helpers
    def source_batch(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> Any:
        """Tokenised, padded source texts as tensors on the model's device (for custom decoding)."""
        src_code = self.model_code(src_lang, "source")
        tgt_code = self.model_code(tgt_lang, "target")
        texts = list(texts)
        if self.family == "marian-multi" and tgt_code:
            texts = [f"{tgt_code} {t}" for t in texts]
        if src_code and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = src_code
        enc = self.tokenizer(texts, return_tensors="pt", padding=True)
        return enc.to(self.model.device)

    def generate_kwargs(self, tgt_lang: str) -> dict[str, Any]:
        """Extra ``generate()`` arguments the family needs (``forced_bos_token_id`` for NLLB/M2M100/mBART)."""
        code = self.model_code(tgt_lang, "target")
        if not code or self.family not in ("nllb", "m2m100", "mbart"):
            return {}
        if self.family == "m2m100":
            return {"forced_bos_token_id": self.tokenizer.get_lang_id(code)}
        return {"forced_bos_token_id": self.tokenizer.convert_tokens_to_ids(code)}

    def target_ids(self, texts: Sequence[str], tgt_lang: str) -> list[list[int]]:
        """Token ids of target texts as the decoder must produce them (language prefix + text + eos)."""
        code = self.model_code(tgt_lang, "target")
        if code and hasattr(self.tokenizer, "tgt_lang") and self.family in ("nllb", "m2m100", "mbart"):
            self.tokenizer.tgt_lang = code
        return [list(ids) for ids in self.tokenizer(text_target=list(texts))["input_ids"]]

    def forced_prefix_length(self) -> int:
        """How many label tokens at the start are forced (the target-language code), not scored."""
        return 1 if self.family in ("nllb", "m2m100", "mbart") else 0

    def input_lengths(self, texts: Sequence[str], src_lang: str) -> list[int]:
        """Source-token counts (special tokens included) of ``texts``."""
        src_code = self.model_code(src_lang, "source")
        if src_code and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = src_code
        return [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]

    def too_long(self, texts: Sequence[str], src_lang: str) -> list[bool]:
        """Which texts exceed ``max_input_tokens``."""
        return [n > self.max_input_tokens for n in self.input_lengths(texts, src_lang)]

    # ------------------------------------------------------------------ translate
    def _namespace(self, src_lang: str, tgt_lang: str) -> dict[str, Any]:
        # a local folder is identified by its weights hash (revision), not by where it lies
        model = Path(self.path).name if Path(self.path).is_dir() and self.revision else self.model_id
        return {"model": model, "revision": self.revision, "params": self.params,
                "max_input_tokens": self.max_input_tokens, "src": self.model_code(src_lang, "source") or src_lang,
                "tgt": self.model_code(tgt_lang, "target") or tgt_lang}

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """Translate ``texts`` (same length and order); cached, batched by length."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"input {i} is {type(t).__name__}, not a string", hint="pass a list of strings")
        ns = self._namespace(src_lang, tgt_lang)
        out: list[str | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            if not t.strip():
                out[i] = ""
                self.stats["empty"] += 1
            else:
                todo.setdefault(t, []).append(i)
        if not todo:
            return [o or "" for o in out]
        keys = {t: cache_key(ns, t) for t in todo}
        cached = self._cache.get_many(list(keys.values())) if self._cache is not None else {}
        missing = []
        for t, idx in todo.items():
            if keys[t] in cached:
                self.stats["cache_hits"] += len(idx)
                for i in idx:
                    out[i] = cached[keys[t]]
            else:
                missing.append(t)
        if missing:
            results = self._translate_uncached(missing, src_lang, tgt_lang, keys)
            for t, r in zip(missing, results):
                for i in todo[t]:
                    out[i] = r
        return [o if o is not None else "" for o in out]

    def _translate_uncached(self, texts: list[str], src_lang: str, tgt_lang: str, keys: dict[str, str]) -> list[str]:
        """Translate unique non-empty texts, splitting over-long ones; store each batch in the cache."""
        lengths = self.input_lengths(texts, src_lang)
        units: list[tuple[int, str]] = []  # (text index, sentence); over-long texts give several units
        for i, (t, n) in enumerate(zip(texts, lengths)):
            if n <= self.max_input_tokens:
                units.append((i, t))
                continue
            if self.params["long_inputs"] == "error":
                raise InputError(f"input {i} has {n} tokens, more than the model's limit of {self.max_input_tokens}",
                                 hint="shorten it, or use long_inputs='split' to translate it sentence by sentence")
            parts = split_sentences(t)
            part_lengths = self.input_lengths(parts, src_lang)
            if len(parts) < 2 or max(part_lengths) > self.max_input_tokens:
                raise InputError(
                    f"input {i} has {n} tokens, more than the model's limit of {self.max_input_tokens}, and "
                    f"splitting it into sentences leaves a sentence of {max(part_lengths)} tokens: {t[:80]!r}...",
                    hint="split or shorten the text before translating, or reject it")
            self.stats["split"] += 1
            units += [(i, p) for p in parts]
        n_units = Counter(i for i, _ in units)
        pieces: dict[int, dict[int, str]] = {}

        def store(done: list[tuple[int, str]]) -> None:
            """Cache every text whose units are all translated, right after each batch, so a
            killed build loses at most the batch in flight. Whole texts are cached (split ones
            too), so a rerun never re-splits."""
            finished = []
            for u, r in done:
                i = units[u][0]
                pieces.setdefault(i, {})[u] = r
                if len(pieces[i]) == n_units[i]:
                    finished.append(i)
            if self._cache is not None and finished:
                self._cache.put_many((keys[texts[i]], " ".join(pieces[i][u] for u in sorted(pieces[i]))) for i in finished)

        self._run_batches([u for _, u in units], src_lang, tgt_lang, on_batch=store)
        return [" ".join(pieces[i][u] for u in sorted(pieces[i])) for i in range(len(texts))]

    def _run_batches(self, texts: list[str], src_lang: str, tgt_lang: str,
                     on_batch: Callable[[list[tuple[int, str]]], None] | None = None) -> list[str]:
        with _torch_threads(self.threads):
            return self._run_batches_inner(texts, src_lang, tgt_lang, on_batch)

    def _run_batches_inner(self, texts: list[str], src_lang: str, tgt_lang: str,
                           on_batch: Callable[[list[tuple[int, str]]], None] | None) -> list[str]:
        import torch

        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        out: list[str] = [""] * len(texts)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        gen_kwargs = self.generate_kwargs(tgt_lang)
        p = self.params
        for b, batch in enumerate(tqdm(batches, desc=f"translate {src_lang}->{tgt_lang}", unit="batch",
                                       disable=not self.progress or len(batches) < 2, leave=False)):
            enc = self.source_batch([texts[i] for i in batch], src_lang, tgt_lang)
            in_len = int(enc["input_ids"].shape[1])
            max_new = p["max_new_tokens"] or min(2 * in_len + 10, self.model_max_tokens)
            # max_length counts the decoder start token; passing it (not max_new_tokens) avoids a
            # conflict warning with the max_length that many saved generation configs carry
            kwargs: dict[str, Any] = dict(gen_kwargs, max_length=max_new + 1)
            if p["sampling"]:
                torch.manual_seed(p["seed"] * 100_003 + b)  # deterministic for the same inputs and batching
                kwargs.update(do_sample=True, top_p=p["top_p"], temperature=p["temperature"], num_beams=1)
            else:
                kwargs.update(do_sample=False, num_beams=p["beam_size"])
            with torch.inference_mode():
                generated = self.model.generate(**enc, **kwargs)
            self.stats["model_calls"] += 1
            self.stats["translated"] += len(batch)
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            for i, text in zip(batch, decoded):
                out[i] = text.strip()
            if on_batch is not None:
                on_batch([(i, out[i]) for i in batch])
        return out

    # ------------------------------------------------------------------ score
    def score(self, sources: Sequence[str], targets: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[float]]:
        """Teacher-forced log-probabilities of each target token given its source.

        One list per pair, one value per target token (eos included, the forced target-language
        code of NLLB/M2M100/mBART excluded). Pairs are batched by length.
        """
        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets", hint="give one target per source")
        with _torch_threads(self.threads):
            return self._score(sources, targets, src_lang, tgt_lang)

    def _score(self, sources: Sequence[str], targets: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[float]]:
        import torch

        sources, targets = list(sources), list(targets)
        labels_all = self.target_ids(targets, tgt_lang)
        skip = self.forced_prefix_length()
        order = sorted(range(len(sources)), key=lambda i: (-len(labels_all[i]) - len(sources[i]), i))
        out: list[list[float]] = [[] for _ in sources]
        pad = -100
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            enc = self.source_batch([sources[i] for i in batch], src_lang, tgt_lang)
            width = max(len(labels_all[i]) for i in batch)
            labels = torch.full((len(batch), width), pad, dtype=torch.long)
            for r, i in enumerate(batch):
                labels[r, : len(labels_all[i])] = torch.tensor(labels_all[i])
            labels = labels.to(self.model.device)
            with torch.inference_mode():
                logits = self.model(**enc, labels=labels).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            self.stats["model_calls"] += 1
            self.stats["scored"] += len(batch)
            for r, i in enumerate(batch):
                out[i] = token_logp[r, skip : len(labels_all[i])].tolist()
        return out

    # ------------------------------------------------------------------ describe
    def describe(self) -> dict[str, Any]:
        """Model id, revision, family and generation parameters (for provenance and cards)."""
        return {"name": self.name, "model": self.model_id, "revision": self.revision, "family": self.family,
                "params": dict(self.params), "max_input_tokens": self.max_input_tokens,
                "device": str(getattr(self, "device", "not loaded")), "dtype": str(getattr(self, "dtype", "not loaded"))}
