"""Translator backend on CTranslate2: the same Hugging Face models, converted once, decoded fast.

::

    from dsbuild.registry import translators
    mt = translators.get("ct2")("Helsinki-NLP/opus-mt-en-es", compute_type="int8", beam_size=4)
    mt.translate(["The cat sleeps."], "en", "es")
    mt.score(["The cat sleeps."], ["El gato duerme."], "en", "es")   # per-token log-probabilities

Same interface and behaviour as ``hf-seq2seq`` (:class:`~dsbuild.translate.hf.HFSeq2SeqTranslator`,
which this class extends): language codes per model family (NLLB / M2M100 / mBART target
prefixes, multilingual Marian ``>>xxx<<``), empty inputs, over-long inputs split into sentences,
the SQLite translation cache, batches sorted by length. What differs:

* **Conversion**: the HF model (Marian, M2M100, NLLB, mBART) is converted to the CTranslate2
  format once, in float32, into ``$DSBUILD_CACHE/ct2/<model>-<revision>`` (keyed by model id and
  revision: a local folder's revision is the hash of its weights). The conversion is written to a
  temporary folder and renamed into place, so concurrent builds never see half a model; a second
  construction reuses it (``converted`` is False then).
* **compute_type** (``int8``, ``int8_float16``, ``float16``, ``float32``, ``int8_float32``,
  ``auto``) is applied when the converted model is loaded, so one conversion serves all of them.
  A type the device cannot run is a one-line ConfigError listing the supported ones.
* The cache key holds the engine and compute type: int8 translations never answer float32 requests.
* ``score`` uses CTranslate2's ``score_batch`` (teacher forcing); values are per target token,
  eos included, the forced language code excluded, as ``hf-seq2seq`` returns them.
* The HF model itself is loaded only if a caller asks for ``.model`` (e.g. the constrained
  projector, which needs PyTorch scoring); translating and scoring do not load it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import translators
from dsbuild.translate.cache import default_cache_dir
from dsbuild.translate.hf import HFSeq2SeqTranslator

log = logging.getLogger(__name__)

COMPUTE_TYPES = ("auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16",
                 "bfloat16", "float32")


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError("translator 'ct2' needs the package ctranslate2: pip install 'dsbuild[ct2]' "
                          "(or pip install ctranslate2)") from None
    return ctranslate2


def ct2_cache_dir() -> Path:
    """``$DSBUILD_CACHE/ct2`` (next to the translation cache)."""
    return default_cache_dir().parent / "ct2"


@translators.register("ct2")
class CT2Translator(HFSeq2SeqTranslator):
    """A Hugging Face translation model run by CTranslate2 (converted once, cached).

    Args (besides those of ``hf-seq2seq``):
        compute_type: weights/computation type on the device (see the module docstring).
        device: ``auto`` (CUDA when CTranslate2 sees a GPU, else CPU), ``cpu``, ``cuda``, ``cuda:1``.
        threads: CPU threads for CTranslate2 (``intra_threads``; ``None``: its default).
        convert_dir: where converted models are kept (default ``$DSBUILD_CACHE/ct2``).
        min_new_tokens: no end of sentence before this many output tokens (benchmarks force a
            fixed output length with it and ``max_new_tokens``).
    """

    name = "ct2"

    def __init__(self, model: str, *, compute_type: str = "auto", device: str = "auto",
                 convert_dir: str | Path | None = None, min_new_tokens: int | None = None, **options: Any) -> None:
        self._ct2 = _ctranslate2()
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"compute_type {compute_type!r} is not one of {', '.join(COMPUTE_TYPES)}")
        if options.get("sampling"):
            raise ConfigError("translator 'ct2' does not sample: use beam_size (1 = greedy) or translator 'hf-seq2seq'")
        super().__init__(model, device=device, **options)
        self.compute_type = compute_type
        self.params = {**self.params, "engine": "ctranslate2", "compute_type": compute_type,
                       "min_new_tokens": min_new_tokens}
        self.ct2_device, self.device_index = self._ct2_device(device)
        supported = self._ct2.get_supported_compute_types(self.ct2_device)
        if compute_type not in ("auto", "default") and compute_type not in supported:
            raise ConfigError(f"compute_type {compute_type!r} is not supported on {self.ct2_device} "
                              f"(supported here: {', '.join(sorted(supported))})")
        self.convert_dir = Path(convert_dir) if convert_dir is not None else ct2_cache_dir()
        self.converted = False  # True when this construction ran the conversion
        self.ct2_path = self._ensure_converted()
        self._translator: Any = None

    # ------------------------------------------------------------------ conversion
    def _ct2_device(self, device: str) -> tuple[str, int]:
        if device == "auto":
            return ("cuda" if self._ct2.get_cuda_device_count() > 0 else "cpu"), 0
        m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", device)
        if not m:
            raise ConfigError(f"device {device!r}: use auto, cpu, cuda or cuda:N")
        return m.group(1), int(m.group(2) or 0)

    def conversion_key(self) -> str:
        """Folder name of the converted model: model name + hash of (model id, revision, versions)."""
        blob = repr((self.model_id if not Path(self.path).is_dir() else Path(self.path).name, self.revision,
                     self.requested_revision, self._ct2.__version__))
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.model_id).name or "model")[:60]
        return f"{stem}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def _ensure_converted(self) -> Path:
        """The converted model folder, converting the HF model first when it is not there yet."""
        target = self.convert_dir / self.conversion_key()
        if (target / "model.bin").is_file():
            return target
        self.convert_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp", dir=self.convert_dir))
        try:
            with _marian_loader_for(self.tokenizer, self._config()):
                converter = self._ct2.converters.TransformersConverter(self.path, revision=self.requested_revision)
                converter.convert(str(tmp / "model"), force=True)
            try:
                os.rename(tmp / "model", target)  # atomic: readers see no model or a whole one
                self.converted = True
                log.info("converted %s to CTranslate2 in %s", self.model_id, target)
            except OSError:
                if not (target / "model.bin").is_file():
                    raise
                log.debug("another process converted %s first", self.model_id)
        except (ValueError, NotImplementedError, OSError) as err:
            raise ConfigError(f"cannot convert MT model {self.model_id!r} to CTranslate2: "
                              f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    @property
    def engine(self) -> Any:
        """The loaded ``ctranslate2.Translator``."""
        if self._translator is None:
            try:
                self._translator = self._ct2.Translator(
                    str(self.ct2_path), device=self.ct2_device, device_index=self.device_index,
                    compute_type="default" if self.compute_type == "auto" else self.compute_type,
                    intra_threads=self.threads or 0)
            except (ValueError, RuntimeError) as err:
                raise ConfigError(f"cannot load the CTranslate2 model {self.ct2_path}: {str(err).splitlines()[0][:200]}") from None
        return self._translator

    # ------------------------------------------------------------------ tokens
    def source_tokens(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[str]]:
        """Source token strings as the model's tokenizer makes them (language code, eos included)."""
        src_code = self.model_code(src_lang, "source")
        tgt_code = self.model_code(tgt_lang, "target")
        texts = list(texts)
        if self.family == "marian-multi" and tgt_code:
            texts = [f"{tgt_code} {t}" for t in texts]
        if src_code and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = src_code
        return [self.tokenizer.convert_ids_to_tokens(ids) for ids in self.tokenizer(texts)["input_ids"]]

    def target_prefix(self, tgt_lang: str) -> list[str] | None:
        """The forced first target token (NLLB / M2M100 / mBART language code), else None."""
        forced = self.generate_kwargs(tgt_lang).get("forced_bos_token_id")
        return None if forced is None else [self.tokenizer.convert_ids_to_tokens(forced)]

    def _suppressed(self) -> list[list[str]] | None:
        # generation never emits <pad> (HF sets its logit to -inf for Marian); nor may CTranslate2
        pad = self.tokenizer.pad_token
        return [[pad]] if pad is not None and pad in self.tokenizer.get_vocab() else None

    # ------------------------------------------------------------------ translate / score
    def _run_batches(self, texts: list[str], src_lang: str, tgt_lang: str,
                     on_batch: Callable[[list[tuple[int, str]]], None] | None = None) -> list[str]:
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        out: list[str] = [""] * len(texts)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        prefix = self.target_prefix(tgt_lang)
        suppress = self._suppressed()
        beam = self.params["beam_size"]
        for batch in tqdm(batches, desc=f"translate {src_lang}->{tgt_lang} (ct2)", unit="batch",
                          disable=not self.progress or len(batches) < 2, leave=False):
            tokens = self.source_tokens([texts[i] for i in batch], src_lang, tgt_lang)
            in_len = max(len(t) for t in tokens)
            # the same output limit as hf-seq2seq (which counts the forced language code as output)
            max_new = self.params["max_new_tokens"] or min(2 * in_len + 10, self.model_max_tokens)
            results = self.engine.translate_batch(
                tokens, target_prefix=[prefix] * len(batch) if prefix else None, beam_size=beam,
                max_decoding_length=max_new, min_decoding_length=min(self.params["min_new_tokens"] or 1, max_new),
                max_input_length=0, suppress_sequences=suppress,
                length_penalty=1.0 if beam > 1 else 0.0)
            self.stats["model_calls"] += 1
            self.stats["translated"] += len(batch)
            for i, res in zip(batch, results):
                ids = self.tokenizer.convert_tokens_to_ids(res.hypotheses[0])
                out[i] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            if on_batch is not None:
                on_batch([(i, out[i]) for i in batch])
        return out

    def score(self, sources: Sequence[str], targets: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[float]]:
        """Teacher-forced log-probabilities of each target token (eos included, language code
        excluded), by CTranslate2's ``score_batch``."""
        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets", hint="give one target per source")
        if not sources:
            return []
        src_tokens = self.source_tokens(sources, src_lang, tgt_lang)
        skip = self.forced_prefix_length()
        eos = self.tokenizer.eos_token
        tgt_tokens = []
        for ids in self.target_ids(targets, tgt_lang):
            toks = self.tokenizer.convert_ids_to_tokens(ids)
            # CTranslate2 appends the end token itself (and scores it)
            if toks and toks[-1] == eos:
                toks = toks[:-1]
            tgt_tokens.append(toks)
        results = self.engine.score_batch(src_tokens, tgt_tokens, max_batch_size=self.batch_size, offset=skip,
                                          max_input_length=0)
        self.stats["model_calls"] += 1
        self.stats["scored"] += len(sources)
        return [list(r.log_probs) for r in results]

    def _namespace(self, src_lang: str, tgt_lang: str) -> dict[str, Any]:
        return {**super()._namespace(src_lang, tgt_lang), "engine": "ctranslate2", "compute_type": self.compute_type}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "engine": f"ctranslate2 {self._ct2.__version__}",
                "compute_type": self.compute_type, "device": self.ct2_device}


@contextlib.contextmanager
def _marian_loader_for(tokenizer: Any, config: Any) -> Iterator[None]:
    """CTranslate2's Marian converter assumes ``<pad>`` is the LAST vocabulary entry (true of the
    OPUS-MT models) and drops it. For Marian models whose pad has another id, convert with a
    loader that keeps the vocabulary whole and starts the decoder from the pad token, exactly as
    transformers does (the pad is then suppressed at generation, as transformers does too)."""
    vocab = tokenizer.get_vocab()
    pad = getattr(tokenizer, "pad_token_id", None)
    if getattr(config, "model_type", "") != "marian" or pad is None or pad == len(vocab) - 1:
        yield
        return
    from ctranslate2.converters import transformers as T

    class KeepPadMarianLoader(T.MarianMTLoader):  # type: ignore[misc, name-defined]
        def get_model_spec(self, model: Any) -> Any:
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            return T.BartLoader.get_model_spec(self, model)

        def get_vocabulary(self, model: Any, tokenizer: Any) -> Any:
            return T.BartLoader.get_vocabulary(self, model, tokenizer)

        def set_config(self, cfg: Any, model: Any, tokenizer: Any) -> None:
            cfg.eos_token = tokenizer.eos_token
            cfg.unk_token = tokenizer.unk_token
            cfg.decoder_start_token = tokenizer.convert_ids_to_tokens(model.config.decoder_start_token_id)

        def set_decoder(self, spec: Any, decoder: Any) -> None:
            T.BartLoader.set_decoder(self, spec, decoder)

    before = T._MODEL_LOADERS.get("MarianConfig")
    T._MODEL_LOADERS["MarianConfig"] = KeepPadMarianLoader()
    try:
        yield
    finally:
        T._MODEL_LOADERS["MarianConfig"] = before
