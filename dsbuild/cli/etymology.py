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
    folds: Annotated[int, typer.Option("--folds", min=2, help="Number of folds (by sentence).")] = 10,
    novel: Annotated[bool, typer.Option("--novel/--no-novel", help="Novel-word protocol: also remove each test "
                                        "fold's new word types from every table the features read (as for "
                                        "words nobody annotated); unseen = lower-cased type not in training.")] = False,
    shuffle_seed: Annotated[int | None, typer.Option("--shuffle-seed", help="Shuffled folds as scikit-learn's "
                                                     "KFold(shuffle=True, random_state=SEED) (the published "
                                                     "protocol); default: round-robin folds.")] = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """K-fold cross-validation by sentence (default 10 round-robin folds); prints the protocol with the figures.

    Unseen = exact token type absent from the training folds (lower-cased type with --novel).
    `python scripts/etymology_cv.py` prints every protocol side by side, and the nested-CV figure.
    """
    from dsbuild.maltese.evaluation import Protocol, run_cv

    protocol = Protocol(folds, "round-robin" if shuffle_seed is None else "shuffled", seed=shuffle_seed or 0,
                        novel=novel)
    res = run_cv(_sentences(data), protocol, progress=not as_json)
    seen_by = "lower" if novel else "exact"
    result = res.scores(seen_by).to_dict()
    result["folds"] = folds
    result["protocol"] = protocol.describe() + f"; unseen = {'lower-cased' if novel else 'exact'} type not in the training folds"
    result["per_fold_accuracy"] = [f.accuracy for f in res.per_fold(seen_by)]
    result["fold_mean"] = res.fold_mean(seen_by)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        _print_scores(result, f"{result['protocol']} ({result['tokens']} tokens, pooled)")


@handle_errors
def train(
    data: DataOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write crf.model + meta.json to. "
                                                         "Default: the shipped model folder.")] = None,
    run_cv: Annotated[bool, typer.Option("--cv/--no-cv", help="Also run cross-validation (usual and novel-word "
                                                              "protocols) and store its figures in meta.json "
                                                              "(shown in dataset cards).")] = True,
    folds: Annotated[int, typer.Option("--folds", min=2)] = 10,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also cross-validate the feature set "
                                           "of version 6 on the same folds and record it (cards compare).")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Train the classifier (deterministic) on annotated sentences and save it."""
    from dsbuild.maltese import etymology, resources

    sentences = _sentences(data)
    out_dir = out if out is not None else etymology.shipped_model_dir()
    clf = etymology.train(sentences, out_dir, source=(data or resources.annotations_path()).name)
    if run_cv:
        from dsbuild.maltese.evaluation import Protocol, run_cv as run

        usual = run(sentences, Protocol(folds), progress=True)
        novel = run(sentences, Protocol(folds, novel=True), progress=True)
        base = None
        if baseline:
            base = (run(sentences, Protocol(folds), etymology.BASELINE_PARAMS, progress=True).scores("exact"),
                    run(sentences, Protocol(folds, novel=True), etymology.BASELINE_PARAMS, progress=True).scores("lower"))
        etymology.record_cv(out_dir, usual.scores("exact"), folds, novel=novel.scores("lower"),
                            protocol=Protocol(folds).describe(), baseline=base)
        typer.echo(f"cross-validation ({folds} folds by sentence, round-robin): shipped tables: accuracy "
                   f"{100 * usual.scores().accuracy:.2f}%, unseen {100 * (usual.scores().accuracy_unseen or 0):.2f}%; "
                   f"novel words (fold's new types removed from every table): accuracy "
                   f"{100 * novel.scores('lower').accuracy:.2f}%, novel {100 * (novel.scores('lower').accuracy_unseen or 0):.2f}%")
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
