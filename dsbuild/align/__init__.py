"""Word alignment: aligners behind one interface, symmetrisation, and alignment error rate.

Aligners register in :data:`dsbuild.registry.aligners` (``eflomal``, ``neural``, ``simalign``: the
simalign package behind the same interface)::

    from dsbuild.registry import aligners
    aligner = aligners.get("eflomal")(symmetrization="grow-diag-final")
    [alignment] = aligner.align([["the", "house"]], [["la", "casa"]])
    alignment.links  # ((0, 0), (1, 1)) -- 0-indexed (source, target)

Heavy libraries (torch, transformers) are imported only when an aligner is used.
"""

from dsbuild.align.base import Aligner, Alignment
from dsbuild.align.checks import Normalization, check_pairs, pair_problems, token_problem
from dsbuild.align.eflomal_aligner import MAX_TOKENS as EFLOMAL_MAX_TOKENS
from dsbuild.align.eflomal_aligner import EflomalAligner
from dsbuild.align.evaluation import (
    AERResult,
    GoldAlignment,
    alignment_error_rate,
    read_gold,
    read_links,
    read_parallel,
)
from dsbuild.align.neural import NeuralAligner
from dsbuild.align.simalign_aligner import SimAlignAligner
from dsbuild.align.symmetrize import METHODS as SYMMETRIZATION_METHODS
from dsbuild.align.symmetrize import symmetrize, symmetrize_batch

__all__ = [
    "AERResult",
    "EFLOMAL_MAX_TOKENS",
    "GoldAlignment",
    "NeuralAligner",
    "SimAlignAligner",
    "alignment_error_rate",
    "read_gold",
    "read_links",
    "read_parallel",
    "SYMMETRIZATION_METHODS",
    "Aligner",
    "Alignment",
    "EflomalAligner",
    "Normalization",
    "check_pairs",
    "pair_problems",
    "symmetrize",
    "symmetrize_batch",
    "token_problem",
]
