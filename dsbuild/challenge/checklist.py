"""CheckList test types (Ribeiro et al. 2020): what a row expects a model to do.

* ``MFT`` (minimum functionality test): the row has a gold label; the model should predict it.
* ``INV`` (invariance): the row perturbs a seed example in a way that must not change the
  prediction; the expected output is the seed's label (or the seed's spans, moved).
* ``DIR`` (directional expectation): the perturbation changes the expected output in a known
  direction (e.g. an antonym turns entailment into contradiction); the expected label is given.
"""

from __future__ import annotations

TEST_TYPES: dict[str, str] = {
    "MFT": "minimum functionality: predict the gold label",
    "INV": "invariance: the prediction must not change from the seed example's",
    "DIR": "directional: the perturbation moves the expected output to the given label",
}


def expectation(test_type: str, label: str) -> str:
    """A one-line, human-readable statement of what the model should output for a row."""
    if test_type == "MFT":
        return f"predict {label}"
    if test_type == "INV":
        return f"same prediction as the seed ({label})"
    if test_type == "DIR":
        return f"prediction moves to {label}"
    raise ValueError(f"unknown test type {test_type!r}; expected one of {list(TEST_TYPES)}")
