"""The student baseline: fine-tune an encoder classifier on the teacher's labels, evaluate on human labels.

As in Kuzman & Ljubešić (2024): the student (XLM-RoBERTa for real use; any
``AutoModelForSequenceClassification`` checkpoint) learns from the teacher-labelled **train** split
of an ``llm-annotate`` dataset and is scored on the human-labelled **test** split, against the human
labels (``label``) and against the teacher (``teacher_label``). Single-label datasets only.

A plain PyTorch loop (AdamW, linear decay, seeded shuffling), so a small run is CPU-fast and
repeatable. ``scripts/student.py`` is the command line.

``model="scratch"`` needs no download: a small BERT (:data:`SCRATCH`) with a WordPiece vocabulary
learned from the train split's texts, trained from random weights. It is a no-pretraining floor
for offline runs, not a substitute for XLM-R.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dsbuild.annotate import agreement
from dsbuild.errors import ConfigError, DsbuildError

log = logging.getLogger(__name__)
CONFIG = "default"
#: the ``scratch`` student: a small BERT and its WordPiece vocabulary, learned from the train split only
SCRATCH = {"vocab_size": 8000, "hidden": 128, "layers": 2, "heads": 2, "intermediate": 256, "max_positions": 514}


@dataclass
class StudentSettings:
    """Fine-tuning settings (the paper: lr 8e-6, batch 32, max length 512, a few epochs, XLM-R large)."""

    model: str = "xlm-roberta-base"
    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 16
    max_length: int = 256
    seed: int = 1
    max_train: int = 0  # 0: the whole train split
    threads: int = 0  # torch CPU threads (0: leave torch's default)


def read_split(dataset_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Rows of one split of a built ``llm-annotate`` dataset, with ``label`` as a name (not an id)."""
    import pyarrow.parquet as pq

    root = Path(dataset_dir)
    prov_path = root / "provenance.json"
    if not prov_path.is_file():
        raise DsbuildError(f"{root}: no provenance.json; give the folder of a built llm-annotate dataset "
                           f"(OUT/llm-annotate/VERSION)")
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    if prov.get("builder", {}).get("name") != "llm-annotate":
        raise DsbuildError(f"{root}: built by {prov.get('builder', {}).get('name')!r}, not llm-annotate")
    if prov.get("config", {}).get("multi_label"):
        raise DsbuildError(f"{root}: a multi-label dataset; the student baseline is single-label")
    config = next(c for c in prov["configs"] if c["name"] == CONFIG)
    names = config["features"]["label"]["names"]
    rows: list[dict[str, Any]] = []
    for rel in config["files"].get(split, []):
        rows += pq.read_table(root / rel).to_pylist()
    for row in rows:
        row["label"] = names[row["label"]]
    return rows


def label_names(dataset_dir: str | Path) -> list[str]:
    prov = json.loads((Path(dataset_dir) / "provenance.json").read_text(encoding="utf-8"))
    config = next(c for c in prov["configs"] if c["name"] == CONFIG)
    return list(config["features"]["label"]["names"])


def train(dataset_dir: str | Path, out_dir: str | Path, settings: StudentSettings) -> dict[str, Any]:
    """Fine-tune ``settings.model`` on the train split's teacher labels; save model, tokenizer, report."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = read_split(dataset_dir, "train")
    if settings.max_train > 0:
        rows = rows[: settings.max_train]
    if not rows:
        raise DsbuildError(f"{dataset_dir}: the train split is empty; nothing to learn from")
    names = label_names(dataset_dir)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    try:
        if settings.model == "scratch":
            tok, model = scratch_student([r["text"] for r in rows], names, seed=settings.seed)
        else:
            tok = AutoTokenizer.from_pretrained(settings.model)
            model = AutoModelForSequenceClassification.from_pretrained(
                settings.model, num_labels=len(names), id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)})
    except OSError as err:
        raise ConfigError(f"student model {settings.model!r} cannot be loaded ({str(err).splitlines()[0][:160]}); "
                          f"give a Hub id (e.g. xlm-roberta-base) or a local folder") from None
    max_length = min(settings.max_length, int(getattr(model.config, "max_position_embeddings", 512) or 512) - 2)
    losses = _fit(model, tok, rows, names, settings, max_length)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    report = {"train_rows": len(rows), "settings": asdict(settings), "max_length": max_length,
              "first_epoch_loss": losses[0], "last_epoch_loss": losses[-1], "epoch_losses": losses}
    (out / "student_training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def scratch_student(texts: list[str], names: list[str], *, seed: int = 1) -> tuple[Any, Any]:
    """A randomly initialised small BERT classifier and a WordPiece tokenizer learned from ``texts``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(sorted(texts), trainers.WordPieceTrainer(vocab_size=SCRATCH["vocab_size"],
                                                                    special_tokens=specials, show_progress=False))
    cls_id, sep_id = wp.token_to_id("[CLS]"), wp.token_to_id("[SEP]")
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok = PreTrainedTokenizerFast(tokenizer_object=wp, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]", model_max_length=SCRATCH["max_positions"])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=SCRATCH["hidden"], num_hidden_layers=SCRATCH["layers"],
                        num_attention_heads=SCRATCH["heads"], intermediate_size=SCRATCH["intermediate"],
                        max_position_embeddings=SCRATCH["max_positions"], pad_token_id=tok.pad_token_id,
                        num_labels=len(names), id2label=dict(enumerate(names)),
                        label2id={n: i for i, n in enumerate(names)})
    return tok, BertForSequenceClassification(config)


def _fit(model: Any, tok: Any, rows: list[dict[str, Any]], names: list[str], settings: StudentSettings,
         max_length: int) -> list[float]:
    import torch

    index = {n: i for i, n in enumerate(names)}
    order = list(range(len(rows)))
    rng = random.Random(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    steps = settings.epochs * ((len(rows) + settings.batch_size - 1) // settings.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / max(1, steps)))
    model.train()
    losses = []
    for _epoch in range(settings.epochs):
        rng.shuffle(order)
        total, batches = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            batch = [rows[i] for i in order[start:start + settings.batch_size]]
            enc = tok([r["text"] for r in batch], truncation=True, max_length=max_length, padding=True,
                      return_tensors="pt")
            labels = torch.tensor([index[r["label"]] for r in batch])
            out = model(**enc, labels=labels)
            out.loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            total, batches = total + out.loss.item(), batches + 1
        losses.append(round(total / max(1, batches), 4))
    model.eval()
    return losses


def predict(model_dir: str | Path, texts: list[str], *, batch_size: int = 32, max_length: int = 256) -> list[str]:
    """The student's label for each text."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", 512) or 512) - 2)
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                      return_tensors="pt")
            ids = model(**enc).logits.argmax(-1).tolist()
            out += [model.config.id2label[i] for i in ids]
    return out


def evaluate(dataset_dir: str | Path, model_dir: str | Path, *, max_length: int = 256) -> dict[str, Any]:
    """Student vs human labels and student vs teacher labels on the test split, overall and per language."""
    rows = read_split(dataset_dir, "test")
    if not rows:
        raise DsbuildError(f"{dataset_dir}: the test split is empty; there are no human labels to compare with")
    predicted = predict(model_dir, [r["text"] for r in rows], max_length=max_length)
    human = [r["label"] for r in rows]
    teacher = [r["teacher_label"] for r in rows]
    report: dict[str, Any] = {
        "n": len(rows),
        "student_vs_human": _summary(agreement.scores(human, predicted)),
        "teacher_vs_human": _summary(agreement.scores(human, teacher)),
        # where the teacher gave no label there is nothing to agree with: those texts are left out here
        "student_vs_teacher": _summary(agreement.scores([t for t in teacher if t is not None],
                                                        [p for p, t in zip(predicted, teacher) if t is not None])),
        "per_language": {},
    }
    for lang in sorted({r["language"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["language"] == lang]
        report["per_language"][lang] = {
            "student_vs_human": _summary(agreement.scores([human[i] for i in idx], [predicted[i] for i in idx])),
            "teacher_vs_human": _summary(agreement.scores([human[i] for i in idx], [teacher[i] for i in idx]))}
    report["predictions"] = predicted
    return report


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s[k] for k in ("n", "accuracy", "macro_f1", "macro_f1_reference_labels", "cohen_kappa",
                              "krippendorff_alpha")}


__all__ = ["SCRATCH", "StudentSettings", "evaluate", "label_names", "predict", "read_split", "scratch_student", "train"]
