"""A synthetic topic-classification task and a tiny causal LM trained on it, for tests of LLM code.

Texts are built from topic-specific vocabularies (``sport``, ``politics``, ``economy``,
``science``) in two languages: ``en`` (English words) and ``qsy`` (an invented language whose
words are derived from the English ones by fixed rules; ``qaa``-``qtz`` is the ISO 639 range for
local use). Each text mixes several words of its topic with neutral filler words and a few
distractor words of another topic, so the label must be learned from the words, not read off a
fixed position.

:func:`train_tiny_lm` trains a tiny GPT-2 (2 layers, d=64) with a byte-level BPE tokenizer and a
chat template on conversations whose user message ends with ``Text: <text>\\nTopic:`` and whose
answer is the label (or ``{"label": "<label>"}`` when the user message asks for JSON), so a test
can check that LLM backends return learned, not scripted, labels. :func:`cached_tiny_lm` trains it
once into a cache folder. Everything is seeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: bump when the generator, prompt format or template changes, so cached models are retrained
TASK_VERSION = "1"
LANGUAGES = ("en", "qsy")
LABELS = ("sport", "politics", "economy", "science")
LABEL_DEFINITIONS: dict[str, str] = {
    "sport": "Texts about games, athletes, teams, matches and competitions.",
    "politics": "Texts about governments, elections, parties, laws and parliaments.",
    "economy": "Texts about markets, prices, companies, trade, money and jobs.",
    "science": "Texts about research, experiments, laboratories, discoveries and scientists.",
}
TRAIN_SEED = 0  # the tiny LM's training texts; other seeds give held-out texts

TOPIC_WORDS: dict[str, list[str]] = {
    "sport": ["football", "match", "goal", "team", "player", "coach", "stadium", "league", "score", "tennis",
              "race", "champion", "referee", "striker", "tournament", "medal", "athlete", "season", "cup",
              "penalty", "runner", "olympic", "fans", "victory", "keeper"],
    "politics": ["election", "minister", "parliament", "vote", "party", "senate", "president", "campaign",
                 "law", "government", "policy", "debate", "coalition", "mayor", "ballot", "treaty", "cabinet",
                 "opposition", "reform", "diplomat", "congress", "governor", "referendum", "decree", "voters"],
    "economy": ["market", "price", "inflation", "bank", "trade", "company", "profit", "tax", "budget",
                "investor", "stock", "export", "wage", "debt", "currency", "growth", "shares", "loan",
                "industry", "revenue", "tariff", "recession", "jobs", "merger", "dividend"],
    "science": ["research", "experiment", "laboratory", "physics", "molecule", "theory", "scientist", "data",
                "telescope", "genome", "chemistry", "particle", "biology", "discovery", "climate", "neuron",
                "vaccine", "fossil", "protein", "galaxy", "microscope", "hypothesis", "enzyme", "quantum", "cells"],
}
FILLER_WORDS = ["the", "a", "of", "and", "in", "on", "with", "after", "today", "new", "big", "last", "week",
                "year", "city", "people", "report", "said", "many", "first", "again", "local", "national",
                "morning", "news", "about", "this", "from", "more", "at"]

_VOWELS = str.maketrans("aeiou", "oiuae")


def pseudo_word(word: str) -> str:
    """The ``qsy`` form of an English word: vowels rotated, ``th``/``w``/``c`` respelled, ``-u`` suffix."""
    w = word.replace("th", "z").replace("w", "v").replace("c", "k").translate(_VOWELS)
    return w + ("u" if len(w) % 2 else "")


def _vocab(language: str, words: list[str]) -> list[str]:
    return words if language == "en" else [pseudo_word(w) for w in words]


def synthetic_topic_text(rng: random.Random, language: str, label: str) -> str:
    """One text of ``label`` in ``language``: 3-6 topic words, 0-2 distractors, 3-7 fillers, shuffled."""
    own = rng.sample(_vocab(language, TOPIC_WORDS[label]), rng.randint(3, 6))
    other = rng.choice([t for t in LABELS if t != label])
    distractors = rng.sample(_vocab(language, TOPIC_WORDS[other]), rng.randint(0, 2))
    fillers = [rng.choice(_vocab(language, FILLER_WORDS)) for _ in range(rng.randint(3, 7))]
    words = own + distractors + fillers
    rng.shuffle(words)
    return " ".join(words) + " ."


def synthetic_topic_texts(n: int, seed: int = 1, *, exclude_training: bool = True) -> list[dict[str, Any]]:
    """``n`` labelled texts ``{"id", "text", "language", "label"}``, labels and languages balanced.

    With ``exclude_training`` (default) and ``seed != TRAIN_SEED``, no text is one the tiny LM was
    trained on (held-out data for measuring it).
    """
    rng = random.Random(f"topics-{seed}")
    train = _training_texts() if exclude_training and seed != TRAIN_SEED else frozenset()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n:
        label, language = LABELS[i % len(LABELS)], LANGUAGES[(i // len(LABELS)) % len(LANGUAGES)]
        i += 1
        text = synthetic_topic_text(rng, language, label)
        if text in train or text in seen:
            continue
        seen.add(text)
        out.append({"id": f"topic-{seed}-{len(out):05d}", "text": text, "language": language, "label": label})
    return out


SYSTEM_PROMPTS = [
    "You classify texts by topic.",
    "Classify the topic of the text. Answer with one label: " + ", ".join(LABELS) + ".",
    "Label the topic of each text.\n" + "\n".join(f"- {k}: {v}" for k, v in LABEL_DEFINITIONS.items()),
    "You are a careful annotator. Read the text and give its topic label only.",
]
USER_PREFIXES = ["", "Which topic is this text about?\n", "Classify this text.\n"]


def topic_messages(text: str, *, system: str | None = None, json_answer: bool = False) -> list[dict[str, str]]:
    """The conversation format the tiny LM was trained on (user message ends ``Text: ...\\nTopic:``)."""
    user = f"Text: {text}\nTopic:"
    if json_answer:
        user = 'Answer in JSON as {"label": ...}.\n' + user
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": user}]


def topic_answer(label: str, *, json_answer: bool) -> str:
    """What the tiny LM is trained to answer."""
    return json.dumps({"label": label}) if json_answer else label


def _training_conversations(n: int, seed: int) -> list[tuple[list[dict[str, str]], str]]:
    """Varied prompts around :func:`synthetic_topic_texts` (seed ``TRAIN_SEED``) and their answers."""
    rng = random.Random(f"convs-{seed}")
    out = []
    for ex in synthetic_topic_texts(n, seed, exclude_training=False):
        json_answer = rng.random() < 0.25
        system = rng.choice([None, None] + SYSTEM_PROMPTS)
        msgs = topic_messages(ex["text"], system=system, json_answer=json_answer)
        msgs[-1]["content"] = rng.choice(USER_PREFIXES) + msgs[-1]["content"]
        out.append((msgs, topic_answer(ex["label"], json_answer=json_answer)))
    return out


def _training_texts() -> frozenset[str]:
    return frozenset(ex["text"] for ex in synthetic_topic_texts(DEFAULT_HPARAMS["n_train"], TRAIN_SEED,
                                                                exclude_training=False))


# ----------------------------------------------------------------------------- the tiny LM
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
DEFAULT_HPARAMS: dict[str, Any] = {
    "n_train": 6000, "vocab_size": 1500, "d_model": 64, "layers": 2, "heads": 4, "max_len": 256,
    "batch_size": 32, "steps": 600, "lr": 6e-3, "warmup": 50,
}


def tiny_lm_key(seed: int = 0, **hparams: Any) -> str:
    """A hash of the task (its output), the template and the training settings: the model's cache key."""
    hp = {**DEFAULT_HPARAMS, **hparams, "seed": seed}
    sample = _training_conversations(50, 12345)
    blob = json.dumps({"v": TASK_VERSION, "sample": sample, "hp": hp, "template": CHAT_TEMPLATE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cached_tiny_lm(cache_dir: str | Path | None = None, *, seed: int = 0, **hparams: Any) -> Path:
    """The tiny LM's folder, trained once and cached: ``CACHE/tiny-topic-lm-<key>``.

    ``cache_dir`` defaults to ``$DSBUILD_TEST_CACHE`` or ``~/.cache/dsbuild-tests``; a file lock
    makes concurrent callers wait for one training run.
    """
    from filelock import FileLock

    base = Path(cache_dir or os.environ.get("DSBUILD_TEST_CACHE") or Path.home() / ".cache" / "dsbuild-tests")
    base.mkdir(parents=True, exist_ok=True)
    out = base / f"tiny-topic-lm-{tiny_lm_key(seed, **hparams)}"
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").exists():
            train_tiny_lm(out, seed=seed, **hparams)
    return out


def _render(tok: Any, msgs: list[dict[str, str]], answer: str | None) -> str:
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return prompt if answer is None else prompt + answer + "<|end|>"


def _make_tokenizer(texts: list[str], vocab_size: int, max_len: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|end|>",
                                  model_max_length=max_len, padding_side="left",
                                  additional_special_tokens=SPECIAL_TOKENS[2:])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def train_tiny_lm(out_dir: str | Path, *, seed: int = 0, threads: int | None = 1, **hparams: Any) -> dict[str, Any]:
    """Train the tokenizer and a tiny GPT-2 on the topic conversations into ``out_dir``.

    The folder loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` (chat template included).
    The loss is on the answer tokens only. Returns the training report (also ``training.json``).
    Writes go to a temporary folder renamed at the end.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    hp = {**DEFAULT_HPARAMS, **hparams}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    tmp.chmod(0o755)
    t0, cpu0 = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        convs = _training_conversations(hp["n_train"], TRAIN_SEED)
        raw = [_plain_render(m, a) for m, a in convs]
        tok = _make_tokenizer(raw, hp["vocab_size"], hp["max_len"])
        config = GPT2Config(vocab_size=len(tok), n_positions=hp["max_len"], n_embd=hp["d_model"],
                            n_layer=hp["layers"], n_head=hp["heads"], resid_pdrop=0.0, embd_pdrop=0.0,
                            attn_pdrop=0.0, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
        config.dsbuild_synthetic = {"task": "topics", "version": TASK_VERSION, "seed": seed, **hp}
        model = GPT2LMHeadModel(config)
        report = _train_loop(model, tok, convs, hp, seed)
        model.eval()
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.eos_token_id = tok.eos_token_id
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        report.update({"seconds": round(time.perf_counter() - t0, 1),
                       "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": torch.get_num_threads(), "hparams": hp, "seed": seed,
                       "vocab_size": len(tok), "parameters": sum(p.numel() for p in model.parameters())})
        (tmp / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(old_threads)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("trained tiny topic LM in %.1f s -> %s", report["seconds"], out_dir)
    return report


def _plain_render(msgs: list[dict[str, str]], answer: str) -> str:
    """The chat template written out in Python (the tokenizer does not exist yet when it is trained)."""
    body = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in msgs)
    return body + f"<|assistant|>\n{answer}<|end|>"


def _train_loop(model: Any, tok: Any, convs: list[tuple[list[dict[str, str]], str]], hp: dict[str, Any],
                seed: int) -> dict[str, Any]:
    import torch

    examples = []
    for msgs, answer in convs:
        prompt = tok(_render(tok, msgs, None), add_special_tokens=False)["input_ids"]
        target = tok(answer + "<|end|>", add_special_tokens=False)["input_ids"]
        ids = (prompt + target)[-hp["max_len"]:]
        examples.append((ids, len(target)))
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    batches = [order[i : i + hp["batch_size"]] for i in range(0, len(order), hp["batch_size"])]
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / hp["warmup"], max(0.05, 1 - s / hp["steps"])))
    model.train()
    pad = tok.pad_token_id
    step, losses = 0, []
    while step < hp["steps"]:
        rng.shuffle(batches)
        for batch in batches:
            if step >= hp["steps"]:
                break
            length = max(len(examples[i][0]) for i in batch)
            x = torch.full((len(batch), length), pad, dtype=torch.long)
            y = torch.full((len(batch), length), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for r, i in enumerate(batch):
                ids, n_target = examples[i]
                x[r, length - len(ids):] = torch.tensor(ids)  # left padding, as at inference
                mask[r, length - len(ids):] = 1
                y[r, length - n_target:] = torch.tensor(ids[-n_target:])  # loss on the answer only
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=x, attention_mask=mask, position_ids=pos, labels=y)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            step += 1
    return {"steps": step, "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4)}
