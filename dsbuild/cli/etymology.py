"""``dsbuild etymology ...``: train, cross-validate, evaluate and apply the Maltese etymology classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors

DataOption = Annotated[Path | None, typer.Option("--data", help="Annotations TSV (header: id token category "
                                                              "category_merged). Default: the shipped annotations.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _sentences(data: Path | None):  # noqa: ANN202 - list[AnnotatedSentence]
    from dsbuild.maltese import resources
    from dsbuild.maltese.readers import read_etymology_tsv

    return read_etymology_tsv(data if data is not None else resources.annotations_path())


def _print_scores(scores: dict, title: str) -> None:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}%"

    typer.echo(title)
    echo_table([["overall", pct(scores["accuracy"]), str(scores["tokens"])],
                ["seen in training", pct(scores["accuracy_seen"]), str(scores.get("tokens_seen", "-"))],
                ["unseen in training", pct(scores["accuracy_unseen"]), str(scores.get("tokens_unseen", "-"))]],
               ["tokens", "accuracy", "count"])
    typer.echo("")
    echo_table([[k, f"{100 * v:.2f}"] for k, v in scores["per_label_f1"].items()], ["label", "F1"])


@handle_errors
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Annotated TSV in the MLRS format to score the model on.")],
    model: Annotated[Path | None, typer.Option("--model", help="Model folder (crf.model + meta.json). "
                                                             "Default: the shipped model.")] = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Score the etymology classifier on annotated sentences.

    Prints accuracy overall, on tokens seen in the model's training data and on unseen tokens, and
    per-label F1. The shipped model is trained on all shipped annotations: scoring it on them
    measures seen data; `etymology cv` gives the honest held-out figure.
    """
    from dsbuild.maltese.etymology import evaluate as run_evaluate
    from dsbuild.maltese.etymology import load_classifier, load_model_dir
    from dsbuild.maltese.readers import read_etymology_tsv

    clf = load_model_dir(model) if model is not None else load_classifier()
    scores = run_evaluate(clf, read_etymology_tsv(data)).to_dict()
    if as_json:
        typer.echo(json.dumps(scores, sort_keys=True))
    else:
        _print_scores(scores, f"model {clf.version} on {data}")


@handle_errors
def cv(
    data: DataOption = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Number of folds (by sentence, round-robin).")] = 10,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """K-fold cross-validation by sentence (default 10 folds; takes about a minute and a half)."""
    from dsbuild.maltese.etymology import cross_validate

    pooled, per_fold = cross_validate(_sentences(data), folds)
    result = pooled.to_dict()
    result["folds"] = folds
    result["per_fold_accuracy"] = [f.accuracy for f in per_fold]
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        _print_scores(result, f"{folds}-fold cross-validation by sentence ({result['tokens']} tokens)")


@handle_errors
def train(
    data: DataOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write crf.model + meta.json to. "
                                                         "Default: the shipped model folder.")] = None,
    run_cv: Annotated[bool, typer.Option("--cv/--no-cv", help="Also run cross-validation and store its "
                                                              "figures in meta.json (shown in dataset cards).")] = True,
    folds: Annotated[int, typer.Option("--folds", min=2)] = 10,
    verbose: VerboseOption = False,
) -> None:
    """Train the classifier (deterministic) on annotated sentences and save it."""
    from dsbuild.maltese import etymology, resources

    sentences = _sentences(data)
    out_dir = out if out is not None else etymology.shipped_model_dir()
    clf = etymology.train(sentences, out_dir, source=(data or resources.annotations_path()).name)
    if run_cv:
        pooled, per_fold = etymology.cross_validate(sentences, folds)
        etymology.record_cv(out_dir, pooled, folds)
        typer.echo(f"cross-validation ({folds} folds): accuracy {100 * pooled.accuracy:.2f}%, "
                   f"unseen {100 * (pooled.accuracy_unseen or 0):.2f}%")
    typer.echo(f"wrote {out_dir} (model {clf.version}, {len(sentences)} sentences)")


@handle_errors
def tag(
    text: Annotated[str, typer.Argument(help="Maltese text (tokenised with the Maltese rules).")],
    verbose: VerboseOption = False,
) -> None:
    """Print each token of TEXT with its predicted etymology and transliteration."""
    from dsbuild.maltese.etymology import load_classifier
    from dsbuild.maltese.tokenizer import tokenize
    from dsbuild.maltese.transliterate import default_transliterator

    tokens = tokenize(text)
    labels = load_classifier().predict(tokens)
    tr = default_transliterator()
    echo_table([[t, y, tr(t)] for t, y in zip(tokens, labels)], ["token", "etymology", "arabic script"])


def register(app: typer.Typer) -> None:
    """Add the ``etymology`` command group to ``app``."""
    group = typer.Typer(help="Maltese etymology classifier: evaluate, cross-validate, train, tag.",
                        no_args_is_help=True)
    group.command("evaluate")(evaluate)
    group.command("cv")(cv)
    group.command("train")(train)
    group.command("tag")(tag)
    app.add_typer(group, name="etymology")
