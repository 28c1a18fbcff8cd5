"""Property tests: any token text is handled, one spelling per NFC form, one output slot per token."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsbuild.maltese.pipelines import builtin_pipelines
from dsbuild.maltese.readers import MERGED_LABELS
from dsbuild.maltese.transliterate import Transliterator

MALTESE = "abċdefġghħijklmnopqrstuvwxżzàèìòùABĊDEFĠGĦIJKLMNOPQRSTUVWXŻZ'-.,\"0123456789"
tokens = st.text(alphabet=st.sampled_from(MALTESE), min_size=1, max_size=12) | st.text(min_size=1, max_size=6)
DET = Transliterator("deterministic")
PIPELINES = builtin_pipelines()


@settings(max_examples=300, deadline=None)
@given(tokens)
def test_transliteration_total_and_normalisation_invariant(tok):
    a = DET.transliterate(tok)
    b = DET.transliterate(unicodedata.normalize("NFD", tok))
    assert a == b
    assert a.source in ("table", "rules")
    assert all(c in unicodedata.normalize("NFC", tok).lower() or c in tok for c in a.unmapped)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(tokens, min_size=1, max_size=8), st.data())
def test_pipelines_and_classifier_keep_one_slot_per_token(maltese_classifier, toks, data):
    toks = [t for t in toks if t.strip()] or ["kelb"]
    labels = maltese_classifier.predict(toks)
    assert len(labels) == len(toks) and set(labels) <= set(MERGED_LABELS)
    assert maltese_classifier.predict([unicodedata.normalize("NFD", t) for t in toks]) == labels
    name = data.draw(st.sampled_from(sorted(PIPELINES)))
    out = PIPELINES[name].process(toks, labels)
    assert len(out.tokens) == len(toks) and all(out.tokens)
