"""Ensemble projection: several registered projectors vote on each source span's target span.

Every member projects the same pairs onto the same target tokens (the ensemble tokenises each
target once and hands the members the tokenised :class:`~dsbuild.spans.Example`). For each
source span, each member that projected it votes for its target token range with weight
``weight x score`` (the member's own confidence, clipped to [0, 1]; 1 when it gives none). The
range with the most vote weight wins (ties: more agreeing members, then the earlier range).

- ``agreement``: how many members projected the span onto exactly the winning range. It is a
  QC value: ``Projection.span_info[i]["agreement"]`` per source span, ``qc["agreement"]`` (one
  number per projected target span, in target order; the builders write ``qc`` to their ``qc``
  column) and ``qc["min_agreement"]``.
- the span's ``score``: the winning vote weight divided by the total weight of the members that
  took part in the sentence (1.0: all agreed, each fully confident).
- ``min_agreement``: spans fewer members agree on are unprojected (``low_agreement``).
- Two source spans whose winners overlap: the one with more vote weight keeps it, the other
  takes its next-best range that fits, else it is unprojected (``collision``).

A member that fails on a sentence (rejects it) or projects it onto another text (``markers``
makes its own translation) abstains there; a sentence every member rejects is rejected with the
first member's reason. Members run with ``policy="keep-partial"`` (their partial results vote);
the ensemble's ``policy`` applies to its own result.

Defaults: ``alignment`` + ``constrained`` + ``tprojection`` when a translation model is given,
``alignment`` alone otherwise (then the ensemble equals alignment, with agreement 1). The
``tprojection`` member receives the other members' projections as candidates instead of running
its own candidate projectors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project import _common as C
from dsbuild.project import reasons as R
from dsbuild.project.base import Projection, SentencePolicy, Unprojected
from dsbuild.project.tprojection import build_projection, resolve_translator
from dsbuild.registry import projectors
from dsbuild.spans import Example

log = logging.getLogger(__name__)

LOW_AGREEMENT = "low_agreement"
MODEL_METHODS = ("constrained", "tprojection", "markers")


@dataclass
class Member:
    """One voting projector: its name (unique in the ensemble), the projector and its vote weight."""

    name: str
    projector: Any
    weight: float = 1.0


@projectors.register("ensemble")
class EnsembleProjector:
    """Combine registered projectors by score-weighted voting per source span.

    Args:
        members: projector names, ``{"method": NAME, "name": ..., "weight": ..., **options}``
            dicts (the same method twice with other options needs distinct ``name`` s), or
            projector objects; default ``auto`` (see the module docstring).
        translator: the MT model handed to the members that need one (a Translator, or a model
            name / folder loaded as ``hf-seq2seq``).
        weights: vote weight per member name (default 1 each).
        projector_options: keyword arguments per member name, e.g.
            ``{"alignment": {"aligner_options": {...}}, "tprojection": {"max_ngram": 4}}``.
        min_agreement: spans fewer members agree on are unprojected (``low_agreement``).
        policy: ``keep-partial`` (default) or ``reject`` a sentence with an unprojected span.
        target_tokenizer: how target strings are tokenised (for all members alike).
    """

    name = "ensemble"

    def __init__(
        self,
        members: Sequence[str | dict[str, Any] | Any] | str = "auto",
        *,
        translator: Any = None,
        model: str | None = None,
        weights: dict[str, float] | None = None,
        projector_options: dict[str, dict[str, Any]] | None = None,
        min_agreement: int = 1,
        policy: SentencePolicy = "keep-partial",
        target_tokenizer: Any = None,
    ) -> None:
        if policy not in ("keep-partial", "reject"):
            raise ConfigError(f"policy must be 'keep-partial' or 'reject', not {policy!r}")
        if min_agreement < 1:
            raise ConfigError("min_agreement must be >= 1")
        self.translator = resolve_translator(translator if translator is not None else model, "translator")
        self.policy = policy
        self.min_agreement = min_agreement
        self.target_tokenizer = target_tokenizer
        self.projector_options = {k: dict(v) for k, v in (projector_options or {}).items()}
        self.skipped: dict[str, str] = {}
        self.members = self._build_members(members, dict(weights or {}))
        if not self.members:
            raise ConfigError("the ensemble has no member projector")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ConfigError(f"ensemble member names must be unique, got {names}: give each a 'name'")
        unknown = set(weights or {}) - set(names)
        if unknown:
            raise ConfigError(f"weights for unknown ensemble members {sorted(unknown)}; members: {names}")
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ members
    def _build_members(self, members: Any, weights: dict[str, float]) -> list[Member]:
        auto = members == "auto"
        if auto:
            members = ["alignment", "constrained", "tprojection"] if self.translator is not None else ["alignment"]
        elif isinstance(members, str):
            members = [members]
        out = []
        for spec in members:
            try:
                m = self._member(spec)
            except ConfigError as err:
                if not auto:
                    raise
                # a default member this model cannot serve (constrained needs a marker-aware model)
                self.skipped[str(spec)] = str(err)
                log.warning("ensemble: leaving out %s: %s", spec, self.skipped[str(spec)])
                continue
            m.weight = float(weights.get(m.name, m.weight))
            out.append(m)
        return out

    def _member(self, spec: Any) -> Member:
        if not isinstance(spec, (str, dict)):
            return Member(str(getattr(spec, "name", type(spec).__name__)), spec)
        if isinstance(spec, str):
            spec = {"method": spec}
        spec = dict(spec)
        method = spec.pop("method", None) or spec.get("name")
        if method in (None, "ensemble"):
            raise ConfigError(f"ensemble member {spec!r}: give a registered projector as 'method' (not 'ensemble')")
        name = str(spec.pop("name", method))
        weight = float(spec.pop("weight", 1.0))
        opts = {**self.projector_options.get(name, {}), **spec}
        opts.setdefault("policy", "keep-partial")
        if self.target_tokenizer is not None and method != "markers":
            opts.setdefault("target_tokenizer", self.target_tokenizer)
        if method in MODEL_METHODS and self.translator is not None:
            opts.setdefault("translator", self.translator)
        if method == "tprojection":
            opts.setdefault("candidate_projectors", [])  # the other members' projections are its proposals
        return Member(name, projectors.get(method)(**opts), weight)

    def describe(self) -> dict[str, Any]:
        """Settings for provenance: members with weights and their own settings."""
        def settings(p: Any) -> Any:
            d = getattr(p, "describe", None)
            return d() if callable(d) else {"name": type(p).__name__}

        return {"method": self.name, "policy": self.policy, "min_agreement": self.min_agreement,
                "members": [{"name": m.name, "weight": m.weight, "settings": settings(m.projector)} for m in self.members],
                "left_out": dict(self.skipped),
                "vote": "per source span: sum of weight x score per target range; agreement = members on the winner"}

    # ------------------------------------------------------------------ projection
    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example] | None = None,
        *,
        src_lang: str,
        tgt_lang: str,
    ) -> list[Projection]:
        """Run every member on the same tokenised targets and vote (``targets=None``: translate first)."""
        if targets is None:
            if self.translator is None:
                raise ConfigError("targets=None needs a translator (translator= or model=) to make the targets")
            targets = _translate(self.translator, sources, src_lang, tgt_lang)
        elif len(targets) != len(sources):
            raise ConfigError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        tok = C.resolve_tokenizer(self.target_tokenizer, tgt_lang)
        prepared = [C.target_example(s, t, tok) for s, t in zip(sources, targets)]
        results: dict[str, list[Projection]] = {}
        for m in sorted(self.members, key=lambda m: m.projector.__class__.__name__ == "TProjectionProjector"):
            t0 = time.perf_counter()
            if getattr(m.projector, "name", "") == "tprojection" and results:
                out = m.projector.project(sources, prepared, src_lang=src_lang, tgt_lang=tgt_lang,
                                          proposals=[results[k] for k in sorted(results)])
            elif getattr(m.projector, "name", "") == "markers":
                out = m.projector.project(sources, None, src_lang=src_lang, tgt_lang=tgt_lang)
            else:
                out = m.projector.project(sources, prepared, src_lang=src_lang, tgt_lang=tgt_lang)
            self.timings[m.name] = self.timings.get(m.name, 0.0) + time.perf_counter() - t0
            results[m.name] = out
        return [self._vote(i, sources[i], prepared[i], results) for i in range(len(sources))]

    def _vote(self, i: int, source: Example, target: Example, results: dict[str, list[Projection]]) -> Projection:
        present = [(m, results[m.name][i]) for m in self.members]
        voting = [(m, p) for m, p in present if p.rejected is None and p.target.text == target.text]
        qc: dict[str, Any] = {"method": self.name, "members": [m.name for m, _ in voting],
                              "abstained": {m.name: (p.rejected or "other_text") for m, p in present
                                            if (m, p) not in voting}}
        if not voting:
            first = present[0][1]
            reason = first.rejected or C.SENTENCE_REJECTED
            return C.reject_all(source, target, reason, f"every ensemble member rejected the sentence ({reason})", qc)
        total_w = sum(m.weight for m, _ in voting) or 1.0
        ballots = [_ballot(k, target, voting) for k in range(len(source.spans))]
        picks, info, unprojected = self._decide(source, ballots, total_w, len(voting))
        proj = build_projection(source, target, picks, unprojected, qc, info)
        order = sorted(picks, key=lambda k: (picks[k][0], picks[k][1], k))
        proj.qc["agreement"] = [info[k]["agreement"] for k in order]
        proj.qc["min_agreement"] = min(proj.qc["agreement"], default=None)
        if unprojected and self.policy == "reject":
            C.reject_sentence(proj, R.UNPROJECTED_SPAN, f"{len(unprojected)} of {len(source.spans)} spans unprojected "
                                                       f"({', '.join(sorted({u.reason for u in unprojected}))})")
        return proj

    def _decide(self, source: Example, ballots: list[list[tuple[float, int, int, int, list[str]]]], total_w: float,
                n_members: int) -> tuple[dict[int, tuple[int, int, float]], dict[int, dict[str, Any]], list[Unprojected]]:
        """Winners per span, strongest span first; a span whose winner is taken falls back to its next range."""
        picks: dict[int, tuple[int, int, float]] = {}
        info: dict[int, dict[str, Any]] = {}
        unprojected: list[Unprojected] = []
        order = sorted(range(len(ballots)), key=lambda k: (-(ballots[k][0][0] if ballots[k] else 0.0), k))
        for k in order:
            span = source.spans[k]
            voters = len({n for b in ballots[k] for n in b[4]})
            info[k] = {"agreement": 0, "voters": voters, "members": n_members}
            if not ballots[k]:
                unprojected.append(Unprojected(span, R.UNALIGNED, "no ensemble member projected this span"))
                continue
            free = [b for b in ballots[k] if all(b[3] <= a or e <= b[2] for a, e, _ in picks.values())]
            if not free:
                unprojected.append(Unprojected(span, R.COLLISION, "every proposed range overlaps a stronger span"))
                continue
            vote, agree, a, e, names = free[0]
            info[k].update(agreement=agree, agreeing=names, vote=round(vote / total_w, 6),
                           fallback=free[0] is not ballots[k][0])
            if agree < self.min_agreement:
                unprojected.append(Unprojected(span, LOW_AGREEMENT, f"{agree} member(s) agree, min_agreement is "
                                                                    f"{self.min_agreement}"))
                continue
            picks[k] = (a, e, round(min(1.0, vote / total_w), 6))
        return picks, info, unprojected


def _ballot(k: int, target: Example, voting: list[tuple[Member, Projection]]
            ) -> list[tuple[float, int, int, int, list[str]]]:
    """``(vote weight, agreeing members, start, end, member names)`` per proposed range, best first."""
    votes: dict[tuple[int, int], list[Any]] = {}
    for m, p in voting:
        j = p.mapping.get(k)
        if j is None:
            continue
        sp = p.target.spans[j]
        rng = (sp.token_start, sp.token_end) if p.target.tokens == target.tokens else \
            C.char_span_to_tokens(target, sp.start, sp.end)
        if rng is None:
            continue
        score = 1.0 if sp.score is None else min(1.0, max(0.0, float(sp.score)))
        v = votes.setdefault(rng, [0.0, []])
        v[0] += m.weight * score
        v[1].append(m.name)
    out = [(round(w, 9), len(names), a, e, names) for (a, e), (w, names) in votes.items()]
    return sorted(out, key=lambda b: (-b[0], -b[1], b[2], b[3]))


def _translate(translator: Any, sources: Sequence[Example], src_lang: str, tgt_lang: str) -> list[str]:
    texts = [s.text for s in sources]
    todo = [i for i, t in enumerate(texts) if t.strip()]
    done = translator.translate([texts[i] for i in todo], src_lang, tgt_lang) if todo else []
    out = [""] * len(sources)
    for i, t in zip(todo, done):
        out[i] = t
    return out
