"""Label projection: move labelled spans from source sentences onto their translations.

One call, usable without the CLI::

    from dsbuild import Example
    from dsbuild.project import parallel_text, project

    src = [Example.from_words("s1", ["I", "met", "Angela", "Merkel", "in", "Berlin", "."],
                              tags=["O", "O", "B-PER", "I-PER", "O", "B-LOC", "O"])]
    report = project(src, ["Conocí a Angela Merkel en Berlín."], src_lang="en", tgt_lang="es",
                     aligner_options={"seed": 1, **parallel_text("en", "es")})
    report.examples[0].spans      # projected spans (labels, token and char offsets, confidence)
    report.counts                 # sentences kept / rejected, spans projected / unprojected by reason

Statistical aligners learn from the text they align: give them parallel text
(:func:`parallel_text`: text fetched with ``dsbuild parallel fetch``, else the text shipped for the
pair, or your own files), else a small batch
aligns poorly.

Methods are registered in :data:`dsbuild.registry.projectors` (``alignment`` here; ``markers``
and ``constrained`` need a translation model) and share :class:`~dsbuild.project.base.Projection`.

Two directions, same machinery:

- **translate-train**: English (source) examples with gold spans + their translations (targets)
  -> labelled target-language examples to train on. That is :func:`project`.
- **translate-test**: target-language sentences are translated into English, a model labels the
  English translations, and the labels are projected *back* onto the original sentences. That is
  :func:`project_back`: the labelled translations play the source role and the original
  sentences the target role, so the output keeps the original text and tokens exactly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project.base import Projection, ProjectionReport, Projector, SentencePolicy, Unprojected
from dsbuild.project.inputs import check_language, check_sources, check_targets
from dsbuild.spans import Example

__all__ = ["project", "project_back", "parallel_text", "Projection", "ProjectionReport", "Projector", "Unprojected"]


def parallel_text(src_lang: str, tgt_lang: str, src_path: str | None = None, tgt_path: str | None = None,
                  *, tokenizer: str = "moses", corpus: str | None = None) -> dict[str, Any]:
    """Aligner options (``extra_src``/``extra_tgt``) with tokenised parallel text for the pair.

    Given paths are used as they are. Otherwise the text is found by :func:`dsbuild.parallel.parallel_text`,
    the one place that finds parallel text: text fetched with ``dsbuild parallel fetch`` for the
    pair first, else the text shipped with dsbuild (every set of it); ``corpus="shipped"`` takes
    the shipped text only. ``{}`` when there is none (the aligner then learns from the pairs being
    aligned alone). Both sides are tokenised with ``tokenizer`` (cached on disk).
    """
    from dsbuild.project.parallel import tokenized_lines

    if src_path and tgt_path:
        return {"extra_src": tokenized_lines(src_path, tokenizer, src_lang),
                "extra_tgt": tokenized_lines(tgt_path, tokenizer, tgt_lang)}
    from dsbuild.parallel import parallel_text as find

    text = find(src_lang, tgt_lang, corpus=corpus)
    return text.aligner_options(tokenizer) if text is not None else {}


def make_projector(
    method: str | Projector = "alignment",
    *,
    aligner: str | Any = "eflomal",
    aligner_options: dict[str, Any] | None = None,
    target_tokenizer: str | Any | None = None,
    policy: SentencePolicy = "keep-partial",
    **options: Any,
) -> Projector:
    """A projector by registered name (or the given object), configured with ``options``."""
    if not isinstance(method, str):
        return method
    from dsbuild.registry import projectors

    factory = projectors.get(method)
    if target_tokenizer is not None:  # None: the method's own default
        options["target_tokenizer"] = target_tokenizer
    if method == "alignment":
        return factory(aligner=aligner, aligner_options=aligner_options, policy=policy, **options)
    if aligner_options:
        raise ConfigError(f"aligner_options only apply to method 'alignment', not {method!r}")
    return factory(policy=policy, **options)


def project(
    sources: Sequence[Example],
    targets: Sequence[str | Sequence[str] | Example],
    method: str | Projector = "alignment",
    *,
    src_lang: str,
    tgt_lang: str,
    aligner: str | Any = "eflomal",
    aligner_options: dict[str, Any] | None = None,
    target_tokenizer: str | Any | None = None,
    policy: SentencePolicy = "keep-partial",
    **options: Any,
) -> ProjectionReport:
    """Project the spans of ``sources`` onto ``targets`` (translate-train).

    Args:
        sources: labelled source examples (see :class:`~dsbuild.spans.Example`).
        targets: one translation per source: a text (tokenised by ``target_tokenizer``), a token
            list (used as is, e.g. a gold tokenisation), or an :class:`~dsbuild.spans.Example`.
        method: a registered projector name (``alignment``, ``markers``, ``constrained``) or a
            projector object.
        src_lang, tgt_lang: language codes.
        aligner: for ``alignment``: aligner name (default ``eflomal``, offline) or object.
        aligner_options: for ``alignment``: aligner settings, e.g. ``{"extra_src": ..., "extra_tgt":
            ..., "seed": 1}`` (extra parallel text makes statistical alignment much better).
        target_tokenizer: how target *texts* are tokenised: ``moses``, ``spacy``, ``whitespace``
            or a tokenizer object; ``None`` uses the method's default (``moses`` for
            ``alignment``, the same tokenizer as the shipped parallel text).
        policy: ``keep-partial`` keeps sentences with some unprojected spans; ``reject`` rejects them.
        **options: method options (for ``alignment`` see
            :class:`~dsbuild.project.alignment.AlignmentProjectionOptions`).

    Returns:
        A :class:`ProjectionReport`: ``projections`` (one per pair, in order, each with per-span
        confidence, unprojected spans with reasons, and QC), ``examples`` (kept targets) and
        ``counts``. Mismatched input lengths raise :class:`~dsbuild.errors.InputError`; bad
        pairs (empty, too long, control characters) are rejected with a reason, never dropped.

    Raises:
        ArgumentTypeError: (an InputError and a TypeError) an argument of the wrong type: a
            source that is not an Example, a target that is a number or ``None``, a language
            that is not a string. The message names the argument.
        ConfigError: an unknown language code (``tgt_lang="qq"``); the message lists close matches.
    """
    _check_arguments(sources, targets, src_lang, tgt_lang)
    projector = make_projector(method, aligner=aligner, aligner_options=aligner_options,
                               target_tokenizer=target_tokenizer, policy=policy, **options)
    t0 = time.perf_counter()
    projections = projector.project(sources, targets, src_lang=src_lang, tgt_lang=tgt_lang)
    elapsed = time.perf_counter() - t0
    describe = getattr(projector, "describe", None)
    timings = dict(getattr(projector, "timings", {}) or {})
    timings["total"] = elapsed
    return ProjectionReport(projections, method=getattr(projector, "name", str(method)), src_lang=src_lang,
                            tgt_lang=tgt_lang, settings=describe() if callable(describe) else {}, timings=timings)


def project_back(
    originals: Sequence[str | Sequence[str] | Example],
    labelled_translations: Sequence[Example],
    method: str | Projector = "alignment",
    *,
    orig_lang: str,
    translation_lang: str = "en",
    **kwargs: Any,
) -> ProjectionReport:
    """Translate-test: move labels predicted on translations back onto the original sentences.

    ``labelled_translations[i]`` is the (English) translation of ``originals[i]`` with the spans
    a model predicted on it. The result's ``examples`` are the original sentences (text and
    tokens unchanged) carrying the projected spans. Same options as :func:`project`; with
    ``aligner_options`` extra parallel text goes translation-side first (``extra_src`` in
    ``translation_lang``).
    """
    _check_arguments(labelled_translations, originals, translation_lang, orig_lang,
                     names=("labelled_translations", "originals", "translation_lang", "orig_lang"))
    return project(labelled_translations, originals, method, src_lang=translation_lang, tgt_lang=orig_lang, **kwargs)


def _check_arguments(sources: object, targets: object, src_lang: object, tgt_lang: object, *,
                     names: tuple[str, str, str, str] = ("sources", "targets", "src_lang", "tgt_lang")) -> None:
    """Types and language codes of a :func:`project` call, checked before any model is loaded.

    ``names`` are the argument names the caller used (``project_back`` names them differently).
    """
    check_language(src_lang, names[2])
    check_language(tgt_lang, names[3])
    check_sources(sources, names[0])
    check_targets(targets, names[1])
