"""The simalign package (Jalili Sabet et al., 2020) as a registered aligner: ``aligner="simalign"``.

SimAlign aligns words from the contextual embeddings of a multilingual encoder, without
parallel training data. This adapter runs the package's own ``SentenceAligner`` (its embedding
loader, similarity matrix, distortion and matching methods) behind dsbuild's aligner interface::

    from dsbuild.registry import aligners
    aligner = aligners.get("simalign")(model="bert-base-multilingual-cased", matching="itermax")
    [a] = aligner.align([["the", "house"]], [["la", "casa"]])

Any Hugging Face encoder by Hub name or local folder works (simalign's ``bert`` and ``xlmr``
shorthands too). Matching methods, by simalign's names or letters: ``argmax`` (``inter``, ``a``),
``itermax`` (``i``), ``match`` (``mwmf``, ``m``: maximum-weight matching, needs networkx),
``fwd`` (``f``) and ``rev`` (``r``). ``token_type="bpe"`` (simalign's default) aligns subwords and
maps them to words; ``"word"`` averages subwords into words first (as dsbuild's ``neural``
aligner does with ``pooling="mean"``).

What the adapter adds to simalign 0.4 (whose code predates transformers 5): the package's
DEBUG console handler is removed (its messages go through normal logging); a model that cannot
be loaded is one :class:`~dsbuild.errors.ConfigError` line, not a traceback; an encoder-decoder
model (NLLB, mT5) is aligned on its encoder; empty sentences give no links instead of an error; a
word the tokenizer turns into nothing is given as the unknown token (simalign would average an
empty vector into NaN); and a pair longer than the model's input limit, which simalign truncates
silently, is aligned on the words that fit, counted in ``stats["truncated_pairs"]`` and logged.
simalign has no link scores: ``Alignment.scores`` is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dsbuild._optional import require
from dsbuild.align.base import Alignment
from dsbuild.align.checks import check_pairs
from dsbuild.errors import ConfigError
from dsbuild.registry import aligners

log = logging.getLogger(__name__)

#: dsbuild / simalign names of the matching methods -> simalign's internal key and letter
MATCHING = {
    "argmax": ("inter", "a"), "inter": ("inter", "a"), "a": ("inter", "a"),
    "itermax": ("itermax", "i"), "i": ("itermax", "i"),
    "match": ("mwmf", "m"), "mwmf": ("mwmf", "m"), "m": ("mwmf", "m"),
    "fwd": ("fwd", "f"), "f": ("fwd", "f"),
    "rev": ("rev", "r"), "r": ("rev", "r"),
}
TOKEN_TYPES = ("bpe", "word")


def _import_simalign() -> Any:
    simalign = require("simalign", extra="simalign", purpose="the simalign aligner")
    # simalign 0.4 attaches a DEBUG StreamHandler to its logger at import: send its messages
    # through the application's logging configuration instead
    for name in ("simalign.simalign", "simalign"):
        lg = logging.getLogger(name)
        for handler in list(lg.handlers):
            if isinstance(handler, logging.StreamHandler):
                lg.removeHandler(handler)
        lg.setLevel(logging.NOTSET)
    return simalign


@aligners.register("simalign")
class SimAlignAligner:
    """Word aligner running the simalign package's ``SentenceAligner``.

    Args:
        model: Hub name or local folder of an encoder (``bert`` and ``xlmr`` are simalign's
            shorthands for mBERT and XLM-R base).
        layer: hidden layer to read (simalign: 8).
        matching: ``argmax``/``inter``, ``itermax``, ``match``/``mwmf``, ``fwd`` or ``rev``
            (simalign's letters ``a``, ``i``, ``m``, ``f``, ``r`` also work).
        token_type: ``bpe`` (align subwords, simalign's default) or ``word`` (average subwords).
        distortion: simalign's distortion ratio (0 = off).
        device: ``cpu``, ``cuda``, ``cuda:1`` or ``auto``.
        num_threads: CPU threads for torch while aligning (restored afterwards); ``None`` keeps
            torch's setting.
    """

    name = "simalign"

    def __init__(
        self,
        model: str = "bert-base-multilingual-cased",
        layer: int = 8,
        matching: str = "itermax",
        *,
        token_type: str = "bpe",
        distortion: float = 0.0,
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        if matching not in MATCHING:
            raise ConfigError(f"matching must be one of {', '.join(MATCHING)}, got {matching!r}")
        if token_type not in TOKEN_TYPES:
            raise ConfigError(f"token_type must be 'bpe' or 'word', got {token_type!r}")
        if not 0.0 <= float(distortion) <= 1.0:
            raise ConfigError(f"distortion must be between 0 and 1, got {distortion!r}")
        if num_threads is not None and num_threads < 1:
            raise ConfigError("num_threads must be >= 1 (or None for torch's default)")
        self.model_name = str(model)
        self.layer = int(layer)
        self.matching = matching
        self._method, self._letter = MATCHING[matching]
        self.token_type = token_type
        self.distortion = float(distortion)
        self.device_option = device
        self.num_threads = num_threads
        self._aligner: Any = None
        self._limit = 0
        self.stats: dict[str, int] = {"pairs": 0, "truncated_pairs": 0, "unk_words": 0}

    # ------------------------------------------------------------------ public API

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Alignment]:
        """One :class:`Alignment` per pair (0-indexed links; no scores)."""
        check_pairs(src, tgt)
        if not src:
            return []
        self._load()
        import torch

        previous = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            return [self._align_pair(list(s), list(t)) for s, t in zip(src, tgt)]
        finally:
            torch.set_num_threads(previous)

    def describe(self) -> dict[str, Any]:
        """Model and matching settings, for provenance."""
        import importlib.metadata as md

        try:
            version = md.version("simalign")
        except md.PackageNotFoundError:
            version = None
        info: dict[str, Any] = {"aligner": self.name, "model": self.model_name, "layer": self.layer,
                                "matching": self._method, "token_type": self.token_type,
                                "distortion": self.distortion, "simalign": version, "stats": dict(self.stats)}
        if self._aligner is not None:
            info["max_subwords"] = self._limit
            info["device"] = str(self._aligner.device)
        return info

    # ------------------------------------------------------------------ model

    def _load(self) -> None:
        if self._aligner is not None:
            return
        simalign = _import_simalign()
        import torch

        device = self.device_option
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            aligner = simalign.SentenceAligner(model=self.model_name, token_type=self.token_type,
                                               distortion=self.distortion, matching_methods=self._letter,
                                               device=device, layer=self.layer)
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"simalign cannot load model {self.model_name!r}: {str(err).strip().splitlines()[0]} "
                "(give a local folder saved with save_pretrained, or a Hub name reachable from here)") from None
        loader = aligner.embed_loader
        config = loader.emb_model.config
        if getattr(config, "is_encoder_decoder", False):  # NLLB, mT5: embeddings from the encoder
            loader.emb_model = loader.emb_model.get_encoder()
        n_layers = int(getattr(config, "num_hidden_layers", None) or getattr(config, "encoder_layers", 0))
        if not 0 <= self.layer <= n_layers:
            raise ConfigError(f"layer {self.layer} does not exist: {self.model_name} has {n_layers} layers "
                              f"(use 0..{n_layers}, 0 = embeddings)")
        self._aligner = aligner
        self._limit = self._content_limit(loader.tokenizer, config)
        log.info("simalign: %s layer %d, %s matching on %s tokens, %d subwords per sentence",
                 self.model_name, self.layer, self._method, self.token_type, self._limit)

    @staticmethod
    def _content_limit(tokenizer: Any, config: Any) -> int:
        """Subwords per sentence that survive simalign's truncation (special tokens excluded)."""
        limits = []
        tok_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        max_pos = getattr(config, "max_position_embeddings", None)
        if isinstance(max_pos, int) and max_pos > 0:
            pad = getattr(config, "pad_token_id", None)
            offset = pad + 1 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta") and isinstance(pad, int) else 0
            limits.append(max_pos - offset)
        limit = min(limits) if limits else 512
        n_special = len(tokenizer("a")["input_ids"]) - len(tokenizer("a", add_special_tokens=False)["input_ids"])
        return max(1, limit - n_special)

    # ------------------------------------------------------------------ alignment

    def _prepare(self, words: list[str]) -> tuple[list[str], bool]:
        """Words as simalign will see them: empty-piece words as the unknown token, cut to the limit."""
        tok = self._aligner.embed_loader.tokenizer
        out: list[str] = []
        used = 0
        for w in words:
            pieces = tok.tokenize(w)
            if not pieces:
                w = tok.unk_token or w
                pieces = [w]
                self.stats["unk_words"] += 1
            if used + len(pieces) > self._limit:
                return out, True
            out.append(w)
            used += len(pieces)
        return out, False

    def _align_pair(self, src: list[str], tgt: list[str]) -> Alignment:
        self.stats["pairs"] += 1
        if not src or not tgt:
            return Alignment(())
        s, cut_s = self._prepare(src)
        t, cut_t = self._prepare(tgt)
        if cut_s or cut_t:
            self.stats["truncated_pairs"] += 1
            log.warning("simalign: a pair of %d/%d words is longer than %s's %d subwords; aligning the first "
                        "%d/%d words (the rest stay unaligned)", len(src), len(tgt), self.model_name, self._limit,
                        len(s), len(t))
        if not s or not t:
            return Alignment(())
        links = self._aligner.get_word_aligns(s, t)[self._method]
        return Alignment(tuple(sorted({(int(i), int(j)) for i, j in links})))
