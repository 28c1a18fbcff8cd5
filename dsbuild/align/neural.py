"""Neural similarity aligner over any Hugging Face encoder (SimAlign / awesome-align style).

Each sentence is encoded by a pretrained encoder (mBERT, XLM-R, the encoder of NLLB, ... given by
name or local path); subword vectors from one layer are pooled into word vectors, and links are
extracted from the word-by-word similarity matrix:

- ``argmax``: links that are the best match in both directions (row and column argmax);
- ``itermax``: argmax, then repeated argmax over words that are still unaligned (SimAlign's
  IterMax: a candidate needs at least one unaligned end; cells whose both words are aligned are
  excluded, cells with one aligned word are down-weighted by ``itermax_alpha``);
- ``softmax``: awesome-align's bidirectional softmax: softmax of the dot-product matrix over
  target words and over source words, keep links above ``threshold`` (0.001) in both.

Inputs longer than the model's maximum length are encoded in overlapping windows (half a window
of overlap; each subword takes its vector from the window where it is most central), so no word
is truncated. Words the tokenizer turns into nothing (for example a lone zero-width character) are
encoded as the unknown token, so every word gets a vector.

``scores`` holds, per link, the cosine similarity (``argmax``/``itermax``) or the geometric mean of
the two softmax probabilities (``softmax``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dsbuild.align.base import Alignment
from dsbuild.align.checks import check_pairs
from dsbuild.errors import ConfigError
from dsbuild.registry import aligners

log = logging.getLogger(__name__)

EXTRACTIONS = ("argmax", "itermax", "softmax")
POOLINGS = ("mean", "max", "first")


@aligners.register("neural")
class NeuralAligner:
    """Word aligner from contextual embeddings of a Hugging Face encoder.

    Args:
        model: model name on the Hub or local folder (``AutoModel``/``AutoTokenizer``).
        layer: hidden layer to read (0 = embeddings, ``num_hidden_layers`` = last, negative counts
            from the end); SimAlign and awesome-align use 8 for 12-layer models.
        pooling: subword-to-word pooling, ``mean``, ``max`` or ``first``.
        extraction: ``itermax`` (default), ``argmax`` or ``softmax``.
        threshold: probability threshold of ``softmax`` extraction.
        itermax_iterations, itermax_alpha: IterMax rounds (SimAlign: 2) and down-weighting of
            cells with one aligned word (SimAlign: 0.9).
        batch_size: encoder inputs (windows) per forward pass.
        max_length: cap on subwords per encoder input, special tokens included (default: the
            model's own limit).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
        revision: model revision (branch, tag or commit) for Hub names.
        src_lang_code, tgt_lang_code: language codes for tokenizers that take one (NLLB:
            ``eng_Latn``), set as ``tokenizer.src_lang`` for each side.
        num_threads: CPU threads for torch while this aligner encodes (restored afterwards);
            ``None`` keeps torch's setting. 1 is much faster for small models on a busy machine.
    """

    name = "neural"

    def __init__(
        self,
        model: str = "bert-base-multilingual-cased",
        layer: int = 8,
        pooling: str = "mean",
        extraction: str = "itermax",
        *,
        threshold: float = 0.001,
        itermax_iterations: int = 2,
        itermax_alpha: float = 0.9,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str = "auto",
        revision: str | None = None,
        src_lang_code: str | None = None,
        tgt_lang_code: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if extraction not in EXTRACTIONS:
            raise ConfigError(f"extraction must be one of {', '.join(EXTRACTIONS)}, got {extraction!r}")
        if not 0 < threshold < 1:
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold!r}")
        if batch_size < 1 or itermax_iterations < 1:
            raise ConfigError("batch_size and itermax_iterations must be >= 1")
        self.model_name = str(model)
        self.layer = int(layer)
        self.pooling = pooling
        self.extraction = extraction
        self.threshold = float(threshold)
        self.itermax_iterations = int(itermax_iterations)
        self.itermax_alpha = float(itermax_alpha)
        self.batch_size = int(batch_size)
        self.max_length = max_length
        self.device_option = device
        self.revision = revision
        self.lang_codes = (src_lang_code, tgt_lang_code)
        if num_threads is not None and num_threads < 1:
            raise ConfigError("num_threads must be >= 1 (or None for torch's default)")
        self.num_threads = num_threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._content_limit = 0
        self.stats: dict[str, int] = {"windowed_sentences": 0, "encoder_inputs": 0, "unk_words": 0}

    # ------------------------------------------------------------------ public API

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Alignment]:
        """One :class:`Alignment` per pair (0-indexed links, scores per link)."""
        check_pairs(src, tgt)
        if not src:
            return []
        self._load()
        src_vecs = self._embed(src, self.lang_codes[0])
        tgt_vecs = self._embed(tgt, self.lang_codes[1])
        return [self._extract(s, t) for s, t in zip(src_vecs, tgt_vecs)]

    def embed_words(self, sentences: Sequence[Sequence[str]], lang_code: str | None = None) -> list[np.ndarray]:
        """Pooled word vectors (``len(words) x hidden``) of the chosen layer, one array per sentence."""
        self._load()
        return self._embed(sentences, lang_code)

    def describe(self) -> dict[str, Any]:
        """Model, revision and extraction settings (for provenance)."""
        info: dict[str, Any] = {
            "aligner": self.name,
            "model": self.model_name,
            "revision": self.revision,
            "layer": self.layer,
            "pooling": self.pooling,
            "extraction": self.extraction,
            "threshold": self.threshold if self.extraction == "softmax" else None,
            "itermax_iterations": self.itermax_iterations if self.extraction == "itermax" else None,
            "max_length": self.max_length,
            "lang_codes": list(self.lang_codes),
            "num_threads": self.num_threads,
            "stats": dict(self.stats),
        }
        if self._model is not None:
            info["model_commit"] = getattr(self._model.config, "_commit_hash", None)
            info["num_hidden_layers"] = self._num_layers()
            info["device"] = str(self._device)
            info["content_limit"] = self._content_limit
        return info

    # ------------------------------------------------------------------ model

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch

        if self.device_option == "auto":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            device = torch.device(self.device_option)
        self._tokenizer, self._model = _load_encoder(self.model_name, self.revision, str(device))
        self._device = device
        n_layers = self._num_layers()
        if not -(n_layers + 1) <= self.layer <= n_layers:
            self._model = None
            raise ConfigError(
                f"layer {self.layer} does not exist: {self.model_name} has {n_layers} layers "
                f"(use 0..{n_layers}, 0 = embeddings, or a negative index from the end)")
        limit = self._model_limit()
        if self.max_length is not None:
            limit = min(limit, int(self.max_length))
        prefix, suffix = self._special_tokens(None)
        self._content_limit = limit - len(prefix) - len(suffix)
        if self._content_limit < 2:
            raise ConfigError(f"max_length {limit} leaves no room for text next to the special tokens")
        log.info("neural aligner: %s layer %d/%d on %s, %d subwords per encoder input",
                 self.model_name, self.layer, n_layers, device, limit)

    def _num_layers(self) -> int:
        config = self._model.config
        return int(getattr(config, "num_hidden_layers", None) or getattr(config, "encoder_layers", 0))

    def _model_limit(self) -> int:
        config = self._model.config
        limits = []
        max_pos = getattr(config, "max_position_embeddings", None)
        if isinstance(max_pos, int) and max_pos > 0:
            # RoBERTa-style embeddings number positions from padding_idx + 1.
            padding_idx = getattr(getattr(self._model, "embeddings", None), "padding_idx", None)
            limits.append(max_pos - (padding_idx + 1 if isinstance(padding_idx, int) else 0))
        tok_max = getattr(self._tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        return min(limits) if limits else 512

    def _special_tokens(self, lang_code: str | None) -> tuple[list[int], list[int]]:
        """Ids the tokenizer puts before and after the text (``[CLS]``/``[SEP]``, ``<s>``, language codes)."""
        tok = self._tokenizer
        if lang_code is not None and hasattr(tok, "src_lang"):
            tok.src_lang = lang_code
        probe = "a"
        bare = tok(probe, add_special_tokens=False)["input_ids"]
        full = tok(probe)["input_ids"]
        for k in range(len(full) - len(bare) + 1):
            if full[k:k + len(bare)] == bare:
                return list(full[:k]), list(full[k + len(bare):])
        return [], []

    # ------------------------------------------------------------------ encoding

    def _word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Subword ids per word; a word with no pieces becomes the unknown token."""
        tok = self._tokenizer
        unk = tok.unk_token_id if tok.unk_token_id is not None else (tok.pad_token_id or 0)
        out: list[list[list[int]]] = []
        nonempty = [list(s) for s in sentences if s]
        encodings = None
        if getattr(tok, "is_fast", False) and nonempty:
            # verbose=False: long inputs are windowed below, the length warning does not apply
            encodings = tok(nonempty, is_split_into_words=True, add_special_tokens=False, verbose=False)
        k = 0
        for sent in sentences:
            pieces: list[list[int]] = [[] for _ in sent]
            if sent:
                if encodings is not None:
                    for pos, word_id in zip(encodings["input_ids"][k], encodings.word_ids(k)):
                        if word_id is not None:
                            pieces[word_id].append(pos)
                else:
                    for w, word in enumerate(sent):
                        pieces[w] = list(tok(word, add_special_tokens=False, verbose=False)["input_ids"])
                k += 1
            for w in range(len(pieces)):
                if not pieces[w]:
                    pieces[w] = [unk]
                    self.stats["unk_words"] += 1
            out.append(pieces)
        return out

    def _windows(self, n_pieces: int) -> list[tuple[int, int]]:
        limit = self._content_limit
        if n_pieces <= limit:
            return [(0, n_pieces)]
        stride = max(1, limit // 2)
        starts = list(range(0, n_pieces - limit, stride)) + [n_pieces - limit]
        return [(s, s + limit) for s in dict.fromkeys(starts)]

    def _embed(self, sentences: Sequence[Sequence[str]], lang_code: str | None) -> list[np.ndarray]:
        import torch

        prefix, suffix = self._special_tokens(lang_code)
        word_pieces = self._word_pieces(sentences)
        segments: list[list[int]] = []
        plans = []  # per sentence: flat piece ids, windows, their segment indices
        for pieces in word_pieces:
            flat = [p for word in pieces for p in word]
            windows = self._windows(len(flat)) if flat else []
            if len(windows) > 1:
                self.stats["windowed_sentences"] += 1
            idx = []
            for a, b in windows:
                idx.append(len(segments))
                segments.append(prefix + flat[a:b] + suffix)
            plans.append((pieces, windows, idx))
        self.stats["encoder_inputs"] += len(segments)

        hidden: list[np.ndarray | None] = [None] * len(segments)
        order = sorted(range(len(segments)), key=lambda s: -len(segments[s]))
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        previous_threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            self._encode(segments, order, hidden, pad, len(prefix), len(suffix))
        finally:
            torch.set_num_threads(previous_threads)

        result = []
        for pieces, windows, idx in plans:
            n_flat = sum(len(w) for w in pieces)
            if not n_flat:
                result.append(np.zeros((0, 0), dtype=np.float32))
                continue
            flat_vecs = self._merge_windows(n_flat, windows, [hidden[i] for i in idx])  # type: ignore[misc]
            result.append(self._pool(pieces, flat_vecs))
        return result

    def _encode(self, segments: list[list[int]], order: list[int], hidden: list[Any], pad: int,
                n_prefix: int, n_suffix: int) -> None:
        """Run the encoder over ``segments`` in batches (longest first); store each content slice."""
        import torch

        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                width = max(len(segments[s]) for s in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, s in enumerate(batch):
                    ids[row, : len(segments[s])] = torch.tensor(segments[s])
                    mask[row, : len(segments[s])] = 1
                out = self._model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device),
                                  output_hidden_states=True)
                states = out.hidden_states[self.layer].float().cpu().numpy()
                for row, s in enumerate(batch):
                    hidden[s] = states[row, n_prefix: len(segments[s]) - n_suffix]

    @staticmethod
    def _merge_windows(n: int, windows: list[tuple[int, int]], states: list[np.ndarray]) -> np.ndarray:
        """Each subword takes its vector from the window where it is furthest from an edge."""
        if len(windows) == 1:
            return states[0]
        out = np.empty((n, states[0].shape[1]), dtype=np.float32)
        best = np.full(n, -1)
        for (a, b), vecs in zip(windows, states):
            pos = np.arange(a, b)
            margin = np.minimum(pos - a, b - 1 - pos)
            take = margin > best[a:b]
            out[a:b][take] = vecs[take]
            best[a:b] = np.where(take, margin, best[a:b])
        return out

    def _pool(self, pieces: list[list[int]], flat_vecs: np.ndarray) -> np.ndarray:
        words = np.empty((len(pieces), flat_vecs.shape[1]), dtype=np.float32)
        pos = 0
        for w, word in enumerate(pieces):
            chunk = flat_vecs[pos: pos + len(word)]
            pos += len(word)
            if self.pooling == "mean":
                words[w] = chunk.mean(axis=0)
            elif self.pooling == "max":
                words[w] = chunk.max(axis=0)
            else:
                words[w] = chunk[0]
        return words

    # ------------------------------------------------------------------ extraction

    def _extract(self, s: np.ndarray, t: np.ndarray) -> Alignment:
        if s.shape[0] == 0 or t.shape[0] == 0:
            return Alignment(())
        if self.extraction == "softmax":
            return softmax_links(s @ t.T, self.threshold)
        cos = cosine_matrix(s, t)
        if self.extraction == "argmax":
            links = argmax_links(cos)
        else:
            links = itermax_links(cos, self.itermax_iterations, self.itermax_alpha)
        return Alignment(tuple(links), {link: float(cos[link]) for link in links})


_LOADED: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}
_LOADED_MAX = 2  # aligners sharing one model (different layers or extractions) load it once


def _load_encoder(name: str, revision: str | None, device: str) -> tuple[Any, Any]:
    """(tokenizer, encoder in eval mode on ``device``), shared by aligners in this process."""
    key = (name, revision, device)
    if key in _LOADED:
        return _LOADED[key]
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        model = AutoModel.from_pretrained(name, revision=revision)
    except OSError as err:
        raise ConfigError(
            f"cannot load model {name!r}: {str(err).splitlines()[0]} "
            "(give a local folder saved with save_pretrained, or a Hub name reachable from here)") from None
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()  # NLLB / M2M100 / mT5: align on the encoder's states
    model = model.to(device).eval()
    while len(_LOADED) >= _LOADED_MAX:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = (tokenizer, model)
    return tokenizer, model


def cosine_matrix(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cosine similarity of every source row with every target row."""
    sn = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    tn = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return sn @ tn.T


def _mutual_argmax(sim: np.ndarray) -> np.ndarray:
    """Boolean matrix of cells that are the maximum of their row and of their column."""
    rows = np.zeros(sim.shape, dtype=bool)
    rows[np.arange(sim.shape[0]), sim.argmax(axis=1)] = True
    cols = np.zeros(sim.shape, dtype=bool)
    cols[sim.argmax(axis=0), np.arange(sim.shape[1])] = True
    return rows & cols


def argmax_links(sim: np.ndarray) -> list[tuple[int, int]]:
    """SimAlign ArgMax: links that are the best match of both their words."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(_mutual_argmax(sim)))]


def itermax_links(sim: np.ndarray, iterations: int = 2, alpha: float = 0.9) -> list[tuple[int, int]]:
    """SimAlign IterMax: ArgMax, then further mutual-argmax rounds for still-unaligned words.

    In each round a cell whose two words are both aligned is excluded, a cell with one aligned
    word has its similarity scaled by ``alpha``; new links must touch an unaligned word; the rounds
    stop as soon as one side is fully aligned (SimAlign's rule: ``simalign`` gives the same links on
    the same vectors). Always a superset of :func:`argmax_links`.
    """
    sim01 = (sim + 1.0) / 2.0  # non-negative, so masked cells (0) never beat a real candidate
    aligned = _mutual_argmax(sim01)
    if min(sim.shape) <= 2:
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(aligned))]
    for _ in range(iterations - 1):
        src_free = ~aligned.any(axis=1)
        tgt_free = ~aligned.any(axis=0)
        if not src_free.any() or not tgt_free.any():
            break  # as SimAlign: once one side is fully aligned, no new link is added
        open_cells = src_free[:, None] | tgt_free[None, :]
        weight = np.clip(alpha * src_free[:, None] + alpha * tgt_free[None, :], 0.0, 1.0)
        new = _mutual_argmax(sim01 * weight) & open_cells & ~aligned
        if not new.any():
            break
        aligned |= new
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(aligned))]


def softmax_links(scores: np.ndarray, threshold: float = 0.001) -> Alignment:
    """awesome-align's extraction: softmax over targets and over sources, both above ``threshold``."""
    fwd = np.exp(scores - scores.max(axis=1, keepdims=True))
    fwd /= fwd.sum(axis=1, keepdims=True)
    bwd = np.exp(scores - scores.max(axis=0, keepdims=True))
    bwd /= bwd.sum(axis=0, keepdims=True)
    keep = (fwd > threshold) & (bwd > threshold)
    links = [(int(i), int(j)) for i, j in zip(*np.nonzero(keep))]
    return Alignment(tuple(links), {(i, j): float(np.sqrt(fwd[i, j] * bwd[i, j])) for i, j in links})
