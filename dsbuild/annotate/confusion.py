"""The confusion-matrix picture (PNG) shipped with a dataset and shown in its card.

Drawn with matplotlib's Agg backend, without a date or software version in the PNG metadata, so
the same counts give the same bytes (a build is reproducible down to its picture).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from dsbuild.annotate.agreement import NO_ANSWER, Confusion


def confusion_png(conf: Confusion, *, title: str = "", reference_name: str = "human label",
                  predicted_name: str = "teacher label", labels: Sequence[str] | None = None) -> bytes:
    """PNG bytes of ``conf`` (rows: reference, columns: prediction), counts written in the cells.

    ``labels``: row/column order (default: every label seen, sorted); rows or columns that are empty
    throughout are dropped, so a 17-label schema used on 7 reference labels stays readable.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; the Agg renderer is deterministic
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    order = list(labels) if labels is not None else sorted({*conf, *(p for r in conf.values() for p in r)} - {NO_ANSWER})
    rows = [label for label in order if sum(conf.get(label, {}).values())]
    cols = [label for label in order if label in rows or any(r.get(label) for r in conf.values())]  # diagonal kept
    if any(r.get(NO_ANSWER) for r in conf.values()):
        cols.append(NO_ANSWER)
    rows, cols = rows or ["(none)"], cols or ["(none)"]
    matrix = [[conf.get(r, {}).get(c, 0) for c in cols] for r in rows]
    fig = Figure(figsize=(1.6 + 0.55 * len(cols), 1.8 + 0.45 * len(rows)), dpi=100)
    ax = fig.add_subplot()
    peak = max((v for row in matrix for v in row), default=0) or 1
    ax.imshow([[v / peak for v in row] for row in matrix], cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value / peak > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [_short(c) for c in cols], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=7)
    ax.set_xlabel(predicted_name, fontsize=8)
    ax.set_ylabel(reference_name, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    # no "Software" (matplotlib version) and no creation time in the file: identical counts, identical bytes
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close("all")
    return buf.getvalue()


def write_confusion_png(path: str | Path, conf: Confusion, **kwargs: object) -> Path:
    """Write :func:`confusion_png` to ``path`` (atomically) and return it."""
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(confusion_png(conf, **kwargs))  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


__all__ = ["confusion_png", "write_confusion_png"]
