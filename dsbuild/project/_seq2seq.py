"""Teacher-forced scoring on a transformers encoder-decoder, with per-row KV-cache reuse.

Private helper of the constrained-decoding projector. One :class:`Seq2SeqScorer` wraps a loaded
model + tokenizer and offers:

* :meth:`encode` — run the encoder once per (marked) source;
* :meth:`run` — one batched decoder forward over many *rows*; each row continues its own prefix
  (whose self-attention keys/values are reused from an earlier forward) with new tokens, and
  returns the log-probabilities of given next tokens plus of a few "extra" token ids (the
  markers) at every new position, and a cache handle for the row's extended prefix.

Rows in one batch have different prefix lengths. The cache is laid out left-padded (row ``r``'s
keys sit at ``[C - c_r, C)``, the new tokens at ``[C, C + F)``), so a row's valid keys are always
contiguous and a child can reuse its parent's keys as a *view*, without copying. Position
embeddings are then corrected per row by a forward hook on the decoder's position module (the
library computes one position offset for the whole batch). For model families whose position
module we do not know, cache reuse is switched off and every row is recomputed from position 0
(same results, more compute).

Memory: log-probabilities are computed in chunks of positions, so the ``rows x length x vocab``
logits tensor never exists in full.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Upper bound of logits elements materialised at once (rows x positions x vocab chunks).
_LOGITS_CHUNK_ELEMENTS = 8_000_000


@dataclass
class CacheRef:
    """Self-attention keys/values of one prefix, kept inside the batch tensors that computed them.

    ``layers[l] = (keys, values)``, each ``(batch rows, heads, time, head_dim)``; this prefix is
    row ``row``, times ``[start, start + length)``. Children share their parent's CacheRef and
    use its first positions; nothing is copied until a batch is assembled.
    """

    layers: list[tuple[Any, Any]]
    row: int
    start: int
    length: int

    def nbytes(self) -> int:
        """Bytes of the batch tensors this reference keeps alive."""
        return sum(k.numel() * k.element_size() * 2 for k, _ in self.layers)

@dataclass
class Row:
    """One row of a batched decoder forward.

    ``prefix`` are the decoder input ids already covered by ``cache`` (``cache.length`` of them,
    or none when ``cache`` is None); ``fed`` are the new decoder input ids; ``targets[i]`` is the
    id whose log-probability is wanted after ``fed[i]`` (the next token).
    """

    enc: int
    fed: list[int]
    targets: list[int]
    cache: CacheRef | None = None
    prefix: list[int] = field(default_factory=list)
    cache_len: int | None = None  # use only the first ``cache_len`` cached positions (a parent's cache)

    @property
    def cached(self) -> int:
        if self.cache is None:
            return 0
        return self.cache.length if self.cache_len is None else self.cache_len


@dataclass
class RowResult:
    """Log-probabilities after each fed token: of the target and of each extra id."""

    target_logp: list[float]
    extra_logp: list[list[float]]  # [position][extra index]
    cache: CacheRef | None  # covers prefix + fed (length prefix_len + len(fed))


class Seq2SeqScorer:
    """Batched teacher-forced scoring with a transformers seq2seq model (Marian, M2M100/NLLB, mBART...).

    Args:
        model: a loaded ``AutoModelForSeq2SeqLM`` (eval mode is set here).
        tokenizer: its tokenizer.
        src_code / tgt_code: model language codes (NLLB / M2M100 / mBART), or None (Marian).
        use_cache: reuse decoder keys/values of shared prefixes (when the family is supported).
        max_batch_tokens: rows are split so that rows x (cache + new) positions stay below this.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        src_code: str | None = None,
        tgt_code: str | None = None,
        use_cache: bool = True,
        max_batch_tokens: int = 16384,
    ) -> None:
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.src_code = src_code
        self.tgt_code = tgt_code
        self.source_prefix = ""  # e.g. ">>spa<< " for multilingual Marian models
        self.max_batch_tokens = max_batch_tokens
        self.decoder = model.get_decoder()
        self.encoder = model.get_encoder()
        self.lm_head = model.get_output_embeddings()
        self.logits_bias = getattr(model, "final_logits_bias", None)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.pad_id = model.config.pad_token_id
        start = model.config.decoder_start_token_id
        self.start_id = start if start is not None else model.config.eos_token_id
        limits = [v for v in (getattr(tokenizer, "model_max_length", None), getattr(model.config, "max_position_embeddings", None))
                  if isinstance(v, int) and 0 < v < 1_000_000]
        #: longest source or target sequence (special tokens included) the model takes
        self.max_tokens = min(limits) if limits else 512
        self._positions = _position_lookup(self.decoder)
        self.use_cache = bool(use_cache and self._positions is not None)
        if use_cache and self._positions is None:
            log.info("KV-cache reuse off: unknown position embedding %s", type(getattr(self.decoder, "embed_positions", None)))
        self._target_memo: dict[tuple[str | None, str], tuple[list[int], list[int], list[int]]] = {}
        self.forward_calls = 0
        self.forward_rows = 0
        #: encoder row -> (cross-attention (keys, values) batch tensors per layer, row in them)
        self._cross: dict[int, tuple[list[tuple[Any, Any]], int]] = {}
        self._enc_states: list[Any] = []
        self._enc_len: list[int] = []

    # ------------------------------------------------------------------ tokenisation
    def _set_langs(self) -> None:
        if self.src_code is not None and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = self.src_code
        if self.tgt_code is not None and hasattr(self.tokenizer, "tgt_lang"):
            self.tokenizer.tgt_lang = self.tgt_code

    def target_ids(self, text: str) -> tuple[list[int], list[int], list[int]]:
        """Split the tokenised target into (forced special prefix, content, special suffix)."""
        key = (self.tgt_code, text)
        hit = self._target_memo.get(key)
        if hit is not None:
            return list(hit[0]), list(hit[1]), list(hit[2])
        self._set_langs()
        ids = list(self.tokenizer(text_target=text)["input_ids"])
        special = set(self.tokenizer.all_special_ids)
        i = 0
        while i < len(ids) and ids[i] in special:
            i += 1
        j = len(ids)
        while j > i and ids[j - 1] in special:
            j -= 1
        if len(self._target_memo) > 100_000:
            self._target_memo.clear()
        self._target_memo[key] = (ids[:i], ids[i:j], ids[j:])
        return ids[:i], ids[i:j], ids[j:]

    def clear_memo(self) -> None:
        """Forget memoised target tokenisations (benchmarks: every timed run starts cold)."""
        self._target_memo.clear()

    def source_ids(self, text: str) -> list[int]:
        """Source-side ids of ``text`` (special tokens included), as the encoder gets them."""
        self._set_langs()
        return list(self.tokenizer(self.source_prefix + text)["input_ids"])

    def target_piece_ids(self, text: str) -> list[int]:
        """Ids of ``text`` on the target side, without special tokens."""
        self._set_langs()
        return list(self.tokenizer(text_target=text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ------------------------------------------------------------------ encoder
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> list[int]:
        """Encode sources; returns their encoder-row indices for :class:`Row.enc`."""
        self._set_langs()
        ids = self.tokenizer([self.source_prefix + t for t in texts], truncation=True)["input_ids"]
        return self.encode_ids(ids, batch_size)

    def encode_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 64) -> list[int]:
        """Encode sources given as token ids (e.g. from :meth:`source_ids`, so that a caller who
        already tokenised them does not pay twice); returns their encoder-row indices."""
        torch = self.torch
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        rows: dict[int, int] = {}
        pad = self.pad_id if self.pad_id is not None else 0
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.tensor([list(ids[i]) + [pad] * (width - len(ids[i])) for i in idx], dtype=torch.long, device=self.device)
            lengths = [len(ids[i]) for i in idx]
            mask = (torch.arange(width, device=self.device)[None, :] < torch.tensor(lengths, device=self.device)[:, None]).long()
            with torch.inference_mode():
                hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            for r, i in enumerate(idx):
                rows[i] = len(self._enc_states)
                self._enc_states.append(hidden[r, : lengths[r]])
                self._enc_len.append(lengths[r])
        return [rows[i] for i in range(len(ids))]

    def release(self, enc_rows: Sequence[int]) -> None:
        """Free encoder states and cross-attention caches of finished rows."""
        for e in enc_rows:
            self._enc_states[e] = None
            self._cross.pop(e, None)

    # ------------------------------------------------------------------ decoder
    def run(self, rows: Sequence[Row], extra_ids: Sequence[int] = (), keep_cache: bool = True) -> list[RowResult]:
        """Batched forward of ``rows``.

        Rows are sorted by the number of new tokens and cut into chunks of similar length (padding
        costs as much as real tokens) that stay below ``max_batch_tokens``.
        """
        results: list[RowResult | None] = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: (len(self._fed(rows[i])), self._prefix_len(rows[i])))
        chunk: list[int] = []
        longest_prefix = 0

        def flush() -> None:
            for j, res in zip(chunk, self._run_chunk([rows[j] for j in chunk], extra_ids, keep_cache)):
                results[j] = res
            chunk.clear()

        for i in order:
            fed = len(self._fed(rows[i]))
            prefix = self._prefix_len(rows[i])
            if chunk:
                first = len(self._fed(rows[chunk[0]]))
                size = max(longest_prefix, prefix) + fed
                if size * (len(chunk) + 1) > self.max_batch_tokens or fed > 2 * first + 4:
                    flush()
                    longest_prefix = 0
            chunk.append(i)
            longest_prefix = max(longest_prefix, prefix)
        if chunk:
            flush()
        return results  # type: ignore[return-value]

    def _fed(self, row: Row) -> list[int]:
        return row.fed if (row.cache is not None and self.use_cache) else list(row.prefix) + list(row.fed)

    def _prefix_len(self, row: Row) -> int:
        return row.cached if (row.cache is not None and self.use_cache) else len(row.prefix)

    def _run_chunk(self, rows: Sequence[Row], extra_ids: Sequence[int], keep_cache: bool) -> list[RowResult]:
        torch = self.torch
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        # Without cache reuse a row re-feeds its whole prefix.
        fed: list[list[int]] = []
        cached: list[CacheRef | None] = []
        clens: list[int] = []
        for row in rows:
            if row.cache is not None and self.use_cache:
                assert row.cached == len(row.prefix), "cache does not cover the prefix"
                fed.append(list(row.fed))
                cached.append(row.cache)
                clens.append(row.cached)
            else:
                fed.append(list(row.prefix) + list(row.fed))
                cached.append(None)
                clens.append(0)
        n = len(rows)
        C = max(clens)
        F = max(len(f) for f in fed)
        dev = self.device
        input_ids = torch.tensor([f + [self.pad_id] * (F - len(f)) for f in fed], dtype=torch.long, device=dev)
        flen = torch.tensor([len(f) for f in fed], device=dev)
        clen_t = torch.tensor(clens, device=dev)
        cols = torch.arange(C + F, device=dev)
        # valid keys: the row's cached prefix, right-aligned before C, and its new tokens from C
        mask = ((cols[None, :] >= (C - clen_t)[:, None]) & (cols[None, :] < (C + flen)[:, None])).long()
        positions = clen_t[:, None] + torch.arange(F, device=dev)[None, :]
        n_layers = len(self.decoder.layers)
        self_data = None
        if C > 0:
            self_data = self._gather_cache(cached, clens, C, n_layers)
        # Cross-attention keys/values: reuse when every row's source was seen before.
        have_cross = all(row.enc in self._cross for row in rows)
        enc_lens = torch.tensor([self._enc_len[row.enc] for row in rows], device=dev)
        S = int(enc_lens.max())
        enc_mask = (torch.arange(S, device=dev)[None, :] < enc_lens[:, None]).long()
        cross_data = None
        if have_cross:
            cross_data = self._gather_cross(rows, S, n_layers)
            k0 = cross_data[0][0]
            enc_hidden = torch.zeros((1, 1, 1), dtype=self.dtype, device=dev).expand(n, S, k0.shape[1] * k0.shape[3])
        else:
            first = next(self._enc_states[row.enc] for row in rows)
            enc_hidden = torch.zeros((n, S, first.shape[-1]), dtype=first.dtype, device=dev)
            for r, row in enumerate(rows):
                state = self._enc_states[row.enc]
                enc_hidden[r, : state.shape[0]] = state
        self_cache = DynamicCache(ddp_cache_data=self_data) if self_data is not None else DynamicCache()
        cross_cache = DynamicCache(ddp_cache_data=cross_data) if cross_data is not None else DynamicCache()
        cache = EncoderDecoderCache(self_cache, cross_cache)

        hook = None
        if self._positions is not None:
            lookup = self._positions
            hook = self.decoder.embed_positions.register_forward_hook(lambda _m, _a, _o: lookup(positions))
        try:
            with torch.inference_mode():
                out = self.decoder(
                    input_ids=input_ids,
                    attention_mask=mask,
                    encoder_hidden_states=enc_hidden,
                    encoder_attention_mask=enc_mask,
                    past_key_values=cache,
                    use_cache=True,
                )
        finally:
            if hook is not None:
                hook.remove()
        self.forward_calls += 1
        self.forward_rows += n
        hidden = out.last_hidden_state  # (n, F, d)
        new_cache = out.past_key_values
        if not have_cross:
            cross_layers = [(layer.keys, layer.values) for layer in new_cache.cross_attention_cache.layers]
            for r, row in enumerate(rows):
                if row.enc not in self._cross:
                    # a reference into this call's batch tensors: later calls gather whole groups at once
                    self._cross[row.enc] = (cross_layers, r)
        # positions of a re-fed prefix carry no wanted target
        # log-probs only where a row wants them: its new tokens (not padding, not a re-fed prefix)
        positions_wanted: list[int] = []
        targets_wanted: list[int] = []
        for r, row in enumerate(rows):
            off = len(fed[r]) - len(row.fed)
            positions_wanted.extend(range(r * F + off, r * F + off + len(row.fed)))
            targets_wanted.extend(row.targets)
        d = hidden.shape[-1]
        picked = hidden.reshape(n * F, d)[torch.tensor(positions_wanted, dtype=torch.long, device=dev)]
        targets = torch.tensor(targets_wanted, dtype=torch.long, device=dev)
        target_lp, extra_lp = self._log_probs(picked, targets, list(extra_ids))
        results = []
        batch_layers = [(layer.keys, layer.values) for layer in new_cache.self_attention_cache.layers]
        target_lp = target_lp.tolist()
        extra_lp = extra_lp.tolist()
        at = 0
        for r, row in enumerate(rows):
            m = len(row.fed)
            res_cache = None
            if keep_cache and self.use_cache:
                clen = clens[r]
                start = C - clen
                res_cache = CacheRef(batch_layers, r, start, clen + len(fed[r]))
            results.append(
                RowResult(
                    target_logp=target_lp[at : at + m],
                    extra_logp=extra_lp[at : at + m] if extra_ids else [[] for _ in range(m)],
                    cache=res_cache,
                )
            )
            at += m
        return results

    def _gather_cache(self, cached: Sequence[CacheRef | None], clens: Sequence[int], C: int, n_layers: int) -> list[tuple[Any, Any]]:
        """Assemble the left-padded ``(rows, heads, C, head_dim)`` cache of a batch.

        Rows are grouped by the batch tensors their prefix lives in. For each group one flat
        index (row, head, time) is built once and used by a single ``index_select`` per layer and
        per keys/values (advanced indexing with slices, or per-row copies, cost several times
        more). Columns before a row's prefix are padding (masked): they repeat its first key.
        """
        torch = self.torch
        first = next(c for c in cached if c is not None)
        n = len(cached)
        heads, hd = first.layers[0][0].shape[1], first.layers[0][0].shape[3]
        dtype, dev = first.layers[0][0].dtype, first.layers[0][0].device
        groups: dict[int, list[int]] = {}
        for r, c in enumerate(cached):
            if c is not None and clens[r] > 0:
                groups.setdefault(id(c.layers[0][0]), []).append(r)
        cols = torch.arange(C, device=dev)
        head_ids = torch.arange(heads, device=dev)
        parts: list[tuple[list[int], list[tuple[Any, Any]]]] = []
        for rows in groups.values():
            ref = cached[rows[0]]
            assert ref is not None
            T = ref.layers[0][0].shape[2]
            src_rows = torch.tensor([cached[r].row for r in rows], device=dev)  # type: ignore[union-attr]
            starts = torch.tensor([cached[r].start for r in rows], device=dev)  # type: ignore[union-attr]
            lens = torch.tensor([clens[r] for r in rows], device=dev)
            # output column c holds source time start + c - (C - len); earlier columns are padding
            t_idx = (starts[:, None] + cols[None, :] - (C - lens)[:, None]).clamp(min=0)
            t_idx = torch.minimum(t_idx, (starts + lens - 1)[:, None])
            flat = ((src_rows[:, None, None] * heads + head_ids[None, :, None]) * T + t_idx[:, None, :]).reshape(-1)
            layers = [
                (keys.reshape(-1, hd).index_select(0, flat).view(len(rows), heads, C, hd),
                 values.reshape(-1, hd).index_select(0, flat).view(len(rows), heads, C, hd))
                for keys, values in ref.layers
            ]
            parts.append((rows, layers))
        if len(parts) == 1 and len(parts[0][0]) == n:
            return parts[0][1]  # every row from one batch, in order: nothing to assemble
        out = [(torch.zeros((n, heads, C, hd), dtype=dtype, device=dev), torch.zeros((n, heads, C, hd), dtype=dtype, device=dev))
               for _ in range(n_layers)]
        for rows, layers in parts:
            out_rows = torch.tensor(rows, device=dev)
            for layer in range(n_layers):
                out[layer][0].index_copy_(0, out_rows, layers[layer][0])
                out[layer][1].index_copy_(0, out_rows, layers[layer][1])
        return out

    def _gather_cross(self, rows: Sequence[Row], S: int, n_layers: int) -> list[tuple[Any, Any]]:
        """Cross-attention keys/values of the rows' sources, ``(rows, heads, S, head_dim)``.

        Each source's keys/values live in the batch tensors of the call that first used it; rows
        are grouped by those tensors and each group is copied with one indexed gather per layer
        (per-row copies cost more than the decoder itself on small models). Positions past a
        source's length are masked (``encoder_attention_mask``), whatever they hold.
        """
        torch = self.torch
        groups: dict[int, list[int]] = {}
        for r, row in enumerate(rows):
            groups.setdefault(id(self._cross[row.enc][0]), []).append(r)
        k0 = self._cross[rows[0].enc][0][0][0]
        heads, hd, dev = k0.shape[1], k0.shape[3], k0.device
        out = [(torch.zeros((len(rows), heads, S, hd), dtype=k0.dtype, device=dev),
                torch.zeros((len(rows), heads, S, hd), dtype=k0.dtype, device=dev)) for _ in range(n_layers)]
        head_ids = torch.arange(heads, device=dev)
        for members in groups.values():
            layers = self._cross[rows[members[0]].enc][0]
            T = layers[0][0].shape[2]
            width = min(S, T)
            src_rows = torch.tensor([self._cross[rows[r].enc][1] for r in members], device=dev)
            out_rows = torch.tensor(members, device=dev)
            # flat (row, head, time) index into the (rows * heads * T, head_dim) view: one
            # index_select per tensor instead of advanced indexing with slices
            flat = ((src_rows[:, None, None] * heads + head_ids[None, :, None]) * T
                    + torch.arange(width, device=dev)[None, None, :]).reshape(-1)
            for layer in range(n_layers):
                for t in (0, 1):
                    picked = layers[layer][t].reshape(-1, hd).index_select(0, flat).view(len(members), heads, width, hd)
                    if width == S:
                        out[layer][t].index_copy_(0, out_rows, picked)
                    else:
                        out[layer][t][out_rows, :, :width] = picked
        return out

    def _log_probs(self, hidden: Any, targets: Any, extra_ids: list[int]) -> tuple[Any, Any]:
        """log p(target) and log p(extra ids) for ``hidden`` ``(positions, d)``, in chunks of positions."""
        torch = self.torch
        P = hidden.shape[0]
        weight = self.lm_head.weight
        vocab = weight.shape[0]
        # the output bias (Marian's final_logits_bias) is added inside the matmul (one kernel)
        bias = getattr(self.lm_head, "bias", None)
        if self.logits_bias is not None:
            extra_bias = self.logits_bias.reshape(-1)[:vocab]
            bias = extra_bias if bias is None else bias + extra_bias
        step = max(1, _LOGITS_CHUNK_ELEMENTS // max(vocab, 1))
        t_out = torch.empty(P, dtype=hidden.dtype, device=hidden.device)
        e_out = torch.empty((P, len(extra_ids)), dtype=hidden.dtype, device=hidden.device)
        extra = torch.tensor(extra_ids, dtype=torch.long, device=hidden.device)
        with torch.inference_mode():
            for s in range(0, P, step):
                x = hidden[s : s + step]
                logits = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
                if self.pad_id is not None:
                    logits[:, self.pad_id] = float("-inf")  # never an output token (as in generation)
                lse = torch.logsumexp(logits, dim=-1)
                t_out[s : s + step] = logits.gather(1, targets[s : s + step, None]).squeeze(1) - lse
                if len(extra_ids):
                    e_out[s : s + step] = logits[:, extra] - lse[:, None]
        return t_out, e_out


def _position_lookup(decoder: Any) -> Callable[[Any], Any] | None:
    """A function positions -> position embeddings for known decoder families, else None."""
    module = getattr(decoder, "embed_positions", None)
    if module is None:
        return None
    name = type(module).__name__
    if name in ("MarianSinusoidalPositionalEmbedding",):
        return lambda pos: module.weight[pos]
    if name in ("MBartLearnedPositionalEmbedding", "BartLearnedPositionalEmbedding"):
        offset = getattr(module, "offset", 2)
        return lambda pos: module.weight[pos + offset]
    if name in ("M2M100SinusoidalPositionalEmbedding", "NllbMoeSinusoidalPositionalEmbedding"):
        pad = module.padding_idx

        def m2m(pos: Any) -> Any:
            need = int(pos.max()) + pad + 2
            if need > module.weights.shape[0]:
                module.make_weights(need + 8, module.embedding_dim, pad)
            return module.weights[pos + pad + 1]

        return m2m
    return None
