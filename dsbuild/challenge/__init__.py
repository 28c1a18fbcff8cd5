"""Challenge-set generation: typed lexicons, templates, perturbations, CheckList test types.

Used by the builders ``nli-hans``, ``nli-fragments``, ``nli-stress``, ``ner-invariance`` and
``bilingual-words``. Data (lexicons, templates, seed sets) lives in ``builders/data/challenge``;
users extend it with their own YAML files, no code needed.
"""

from dsbuild.challenge.checklist import TEST_TYPES, expectation
from dsbuild.challenge.generate import Candidate, Filled, generate, render, sample_fill
from dsbuild.challenge.lexicon import Entry, Lexicon
from dsbuild.challenge.template import Bank, Template, load_banks

__all__ = ["TEST_TYPES", "expectation", "Candidate", "Filled", "generate", "render", "sample_fill",
           "Entry", "Lexicon", "Bank", "Template", "load_banks"]
