"""Student baseline for an llm-annotate dataset: train on the teacher's labels, evaluate on human labels.

    python scripts/student.py train --data out/llm-annotate/1.0.0 --model xlm-roberta-base --out student/
    python scripts/student.py evaluate --data out/llm-annotate/1.0.0 --model student/ [--report report.json]
    python scripts/student.py train --data out/llm-annotate/1.0.0 --model scratch --out student/   # offline

``--model scratch`` needs no download: a small BERT with a WordPiece vocabulary learned from the
train split, trained from random weights (a no-pretraining floor, not a substitute for XLM-R).

``train`` fine-tunes an ``AutoModelForSequenceClassification`` on the train split (teacher labels);
``evaluate`` prints student vs human, teacher vs human and student vs teacher figures (accuracy,
macro-F1, Cohen's kappa, Krippendorff's alpha) on the human-labelled test split, overall and per
language, as JSON. Protocol: the test split is never seen in training; dev is not used (no model
selection), so the test figures are not tuned on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsbuild.annotate.student import StudentSettings, evaluate, train  # noqa: E402
from dsbuild.errors import DsbuildError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune on the teacher-labelled train split")
    t.add_argument("--data", required=True, help="built dataset folder (OUT/llm-annotate/VERSION)")
    t.add_argument("--model", default="xlm-roberta-base",
                   help="encoder checkpoint (Hub id or folder), or 'scratch' (offline)")
    t.add_argument("--out", required=True, help="where to save the student")
    defaults = StudentSettings()
    for name in ("epochs", "batch_size", "max_length", "seed", "max_train", "threads"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    t.add_argument("--lr", type=float, default=defaults.lr)
    e = sub.add_parser("evaluate", help="score the student on the human-labelled test split")
    e.add_argument("--data", required=True)
    e.add_argument("--model", required=True, help="the trained student folder")
    e.add_argument("--max-length", type=int, default=defaults.max_length)
    e.add_argument("--report", default="", help="also write the report (with predictions) to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.command == "train":
            settings = StudentSettings(model=args.model, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                       max_length=args.max_length, seed=args.seed, max_train=args.max_train,
                                       threads=args.threads)
            print(json.dumps(train(args.data, args.out, settings), indent=2))
        else:
            report = evaluate(args.data, args.model, max_length=args.max_length)
            if args.report:
                Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            print(json.dumps({k: v for k, v in report.items() if k != "predictions"}, indent=2))
    except DsbuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
