"""Stable reason codes for unprojected spans and rejected sentences (shown in rejects tables).

Codes are snake_case strings so they can be counted and filtered; :data:`DESCRIPTIONS` says what
each means, for cards and reports.
"""

from __future__ import annotations

# sentence-level (input checks)
EMPTY_SOURCE = "empty_source"
EMPTY_TARGET = "empty_target"
TOO_LONG = "too_long"
CONTROL_CHARACTERS = "control_characters"
TOKEN_WHITESPACE = "token_whitespace"
TOKENIZATION_FAILED = "tokenization_failed"
SOURCE_OVERLAP = "overlapping_spans"
# span-level
UNALIGNED = "unaligned"
SPLIT = "split"
COLLISION = "collision"
LOW_CONFIDENCE = "low_confidence"
# sentence-level (policy)
UNPROJECTED_SPAN = "unprojected_span"
SENTENCE_REJECTED = "sentence_rejected"

DESCRIPTIONS: dict[str, str] = {
    EMPTY_SOURCE: "the source sentence has no tokens",
    EMPTY_TARGET: "the target sentence has no tokens",
    TOO_LONG: "a side has more tokens than the aligner accepts",
    CONTROL_CHARACTERS: "a token contains control characters (other than tab/newline)",
    TOKEN_WHITESPACE: "a given target token contains whitespace (aligners split on whitespace)",
    TOKENIZATION_FAILED: "the target tokenizer could not keep character offsets for this text",
    SOURCE_OVERLAP: "source spans overlap; the output format cannot hold both",
    UNALIGNED: "no target token is aligned to the span and its text does not occur in the target",
    SPLIT: "the aligned target tokens form separate groups (policy split=reject)",
    COLLISION: "the span's target tokens were taken by a higher-confidence span",
    LOW_CONFIDENCE: "the projection's confidence is below min_score",
    UNPROJECTED_SPAN: "the sentence has an unprojected span and the policy is reject",
    SENTENCE_REJECTED: "the span was projected but its sentence was rejected",
}
