"""A synthetic language pair with known gold alignments, for tests and benchmarks of label projection.

The source side ("en", English-like) comes from a small grammar with multiword named entities
(PER, LOC, ORG). The target side ("qsy", an invented language; ``qaa``-``qtz`` is the ISO 639
range for local use) is derived from the source by rules whose effect on word positions is
recorded, so the gold word alignment and the gold target spans are known exactly:

* word substitution through a lexicon, some words one-to-many (``farmer`` -> ``kampa ulo``),
  some function words dropped (``the``);
* reordering: adjectives follow their noun, the verb goes to the end of its clause, and a
  locative phrase (``in Paris``) moves to the front of the sentence, so entity order can change;
* names are transliterated by a few character rules (``William Walker`` -> ``Villiam Valker``),
  organisation names are kept as they are.

:func:`generate_pairs` returns :class:`SyntheticPair` s (source and target :class:`Example` s with
spans, the alignment, and the source-span -> target-span mapping). :func:`marked_texts` wraps the
spans of both sides in EasyProject-style markers (``[ John Smith ]``), the training data a model
needs to learn to carry markers. :func:`train_tiny_marian` trains a tiny sentencepiece tokenizer
and MarianMTModel on a mix of clean and marked pairs (a minute or two on 2 CPU cores), saved so
that ``MarianMTModel.from_pretrained(path)`` / ``MarianTokenizer.from_pretrained(path)`` load it.

Everything is seeded: same seed, same pairs, same model files' content.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.spans import Example

log = logging.getLogger(__name__)

SRC_LANG = "en"
TGT_LANG = "qsy"
LABELS = ("LOC", "ORG", "PER")
MARKERS = ("[", "]")
#: bump when the grammar changes, so cached models are retrained
GRAMMAR_VERSION = "1"

# ----------------------------------------------------------------------------- the grammar
FIRST_NAMES = ["John", "Mary", "Peter", "Anna", "David", "Laura", "Michael", "Sofia", "Thomas", "Clara",
               "William", "Elena", "Victor", "Grace"]
LAST_NAMES = ["Smith", "Walker", "Johnson", "Carter", "Wilson", "Baker", "Clarke", "Young", "Hughes", "Fisher",
              "Cooper", "Philips"]
LOCATIONS = [["Paris"], ["London"], ["New", "York"], ["Berlin"], ["Cape", "Town"], ["Buenos", "Aires"], ["Tokyo"],
             ["Lake", "Victoria"], ["San", "Francisco"], ["Wellington"], ["Mexico", "City"], ["Chicago"],
             ["North", "Carolina"], ["Athens"]]
ORGANISATIONS = [["United", "Nations"], ["Red", "Cross"], ["Acme", "Corporation"], ["World", "Bank"],
                 ["Green", "Party"], ["Nordic", "Council"], ["Apex", "Motors"], ["UNESCO"], ["Interpol"],
                 ["Bluebird", "Airlines"], ["National", "Museum", "of", "Art"]]

# source word -> target words ([] = dropped); several are one-to-many
DETERMINERS = {"the": [], "a": ["un"], "this": ["esto"], "every": ["kada"]}
NOUNS = {"house": ["kasa"], "car": ["auto"], "book": ["libro"], "city": ["urbo"], "river": ["fluvo"],
         "dog": ["hundo"], "letter": ["karto"], "report": ["raporto"], "market": ["bazaro"],
         "bridge": ["ponto"], "teacher": ["maestro"], "doctor": ["doktoro"], "farmer": ["kampa", "ulo"],
         "ship": ["navo"], "garden": ["gardeno"], "train": ["treno"], "child": ["infano"],
         "newspaper": ["gazeto", "paper"]}
ADJECTIVES = {"big": ["granda"], "small": ["mal", "granda"], "old": ["olda"], "new": ["nova"], "red": ["ruga"],
              "green": ["verda"], "happy": ["felica"], "quiet": ["kvieta"], "famous": ["tre", "konata"],
              "strange": ["stranga"], "young": ["juna"]}
VERBS = {"sees": ["vidas"], "buys": ["acetas"], "visits": ["vizitas"], "writes": ["skribas"], "likes": ["sxatas"],
         "sells": ["vendas"], "finds": ["trovas"], "leaves": ["for", "lasas"], "calls": ["telefon", "vokas"],
         "helps": ["helpas"], "meets": ["renkontas"]}
PREPOSITIONS = {"near": ["apud"], "from": ["el"], "with": ["kun"], "to": ["al"], "for": ["por"]}
ADVERBS = {"yesterday": ["hierau"], "today": ["hodiau"], "often": ["ofte"], "quickly": ["kun", "rapido"],
           "again": ["denove"]}
FIXED = {"and": ["kaj"], "in": ["en"], "says": ["diras"], "that": ["ke"], ".": ["."]}
LEXICON: dict[str, list[str]] = {**DETERMINERS, **NOUNS, **ADJECTIVES, **VERBS, **PREPOSITIONS, **ADVERBS, **FIXED}

# transliteration of person and place names, applied in order (organisation names are kept)
TRANSLIT_RULES = [("th", "t"), ("ph", "f"), ("Th", "T"), ("Ph", "F"), ("w", "v"), ("W", "V"), ("c", "k"),
                  ("C", "K"), ("y", "j"), ("Y", "J"), ("q", "k")]


def transliterate(word: str) -> str:
    """The target form of a person or place name word."""
    for a, b in TRANSLIT_RULES:
        word = word.replace(a, b)
    return word


# ----------------------------------------------------------------------------- data model
@dataclass
class SyntheticPair:
    """One parallel sentence pair with gold alignment and gold spans on both sides.

    ``alignment`` holds ``(source token, target token)`` links (0-based). ``span_map`` maps the
    index of each source span (in ``source.spans``) to the index of its gold target span (in
    ``target.spans``); every source span has one.
    """

    id: str
    source: Example
    target: Example
    alignment: list[tuple[int, int]]
    span_map: dict[int, int] = field(default_factory=dict)

    def marked(self, markers: tuple[str, str] = MARKERS) -> tuple[str, str]:
        """Both sides with every span wrapped in markers: ``Only [ John Smith ] sees ...``."""
        return mark_text(self.source, markers), mark_text(self.target, markers)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source.to_dict(), "target": self.target.to_dict(),
                "alignment": [list(a) for a in self.alignment],
                "span_map": {str(k): v for k, v in self.span_map.items()}}


def mark_text(ex: Example, markers: tuple[str, str] = MARKERS) -> str:
    """The example's tokens joined by spaces, with ``[`` before and ``]`` after each span."""
    opens: dict[int, int] = {}
    closes: dict[int, int] = {}
    for s in ex.spans:
        opens[s.token_start] = opens.get(s.token_start, 0) + 1
        closes[s.token_end - 1] = closes.get(s.token_end - 1, 0) + 1
    out: list[str] = []
    for i, tok in enumerate(ex.tokens):
        out += [markers[0]] * opens.get(i, 0)
        out.append(tok.text)
        out += [markers[1]] * closes.get(i, 0)
    return " ".join(out)


# ----------------------------------------------------------------------------- generation
# A "unit" is a list of (source word, entity label or None, is-name) produced by the grammar;
# rendering to the target keeps, for each target word, the index of its source word.
_Word = tuple[str, str | None, int]  # (word, label, entity number or -1)


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.entity_counter = 0

    def _entity(self, label: str) -> list[_Word]:
        r = self.rng
        if label == "PER":
            words = [r.choice(FIRST_NAMES)] + ([r.choice(LAST_NAMES)] if r.random() < 0.6 else [])
        elif label == "LOC":
            words = list(r.choice(LOCATIONS))
        else:
            words = list(r.choice(ORGANISATIONS))
        n = self.entity_counter
        self.entity_counter += 1
        return [(w, label, n) for w in words]

    def _np(self, allow_entity: bool = True) -> tuple[list[_Word], str]:
        """A noun phrase; returns the words and its kind ('np' or the entity label)."""
        r = self.rng
        if allow_entity and r.random() < 0.55:
            label = r.choice(["PER", "PER", "ORG"])
            return self._entity(label), label
        det = r.choice(list(DETERMINERS))
        words: list[_Word] = [(det, None, -1)]
        if r.random() < 0.5:
            words.append((r.choice(list(ADJECTIVES)), None, -1))
        words.append((r.choice(list(NOUNS)), None, -1))
        return words, "np"

    def clause(self) -> dict[str, Any]:
        r = self.rng
        subj, _ = self._np()
        if r.random() < 0.15:  # coordinated subject: "John and the old doctor"
            other, _ = self._np()
            subj = subj + [("and", None, -1)] + other
        verb = r.choice(list(VERBS))
        obj, _ = self._np()
        pp: list[_Word] = []
        loc_front = False
        roll = r.random()
        if roll < 0.35:
            pp = [("in", None, -1)] + self._entity("LOC")
            loc_front = True
        elif roll < 0.6:
            prep = r.choice(list(PREPOSITIONS))
            inner, _ = self._np() if r.random() < 0.5 else (self._entity("LOC"), "LOC")
            pp = [(prep, None, -1)] + inner
        adv: list[_Word] = [(r.choice(list(ADVERBS)), None, -1)] if r.random() < 0.3 else []
        return {"subj": subj, "verb": [(verb, None, -1)], "obj": obj, "pp": pp, "adv": adv, "loc_front": loc_front}

    def sentence(self) -> dict[str, Any]:
        if self.rng.random() < 0.12:  # "Mary says that <clause>"
            speaker = self._entity("PER")
            return {"speaker": speaker, "clause": self.clause()}
        return {"speaker": None, "clause": self.clause()}


def _source_order(sent: dict[str, Any]) -> list[_Word]:
    c = sent["clause"]
    words = c["subj"] + c["verb"] + c["obj"] + c["pp"] + c["adv"]
    if sent["speaker"]:
        words = sent["speaker"] + [("says", None, -1), ("that", None, -1)] + words
    return words + [(".", None, -1)]


def _np_target_order(np: list[tuple[int, _Word]]) -> list[tuple[int, _Word]]:
    """Adjective-noun swap inside a noun phrase (entities are left alone)."""
    out = list(np)
    for i in range(len(out) - 1):
        if out[i][1][0] in ADJECTIVES and out[i][1][1] is None and out[i + 1][1][0] in NOUNS:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _build_pair(pair_id: str, sent: dict[str, Any]) -> SyntheticPair:
    src_words = _source_order(sent)
    # index every source word, then rebuild the target order from the same pieces
    indexed = list(enumerate(src_words))
    pos = 0

    def take(n: int) -> list[tuple[int, _Word]]:
        nonlocal pos
        part = indexed[pos : pos + n]
        pos += n
        return part

    speaker = take(len(sent["speaker"]) + 2) if sent["speaker"] else []
    c = sent["clause"]
    subj, verb, obj = take(len(c["subj"])), take(1), take(len(c["obj"]))
    pp, adv, stop = take(len(c["pp"])), take(len(c["adv"])), take(1)
    clause_tgt = _np_target_order(subj) + _np_target_order(obj)
    if c["loc_front"]:
        clause_tgt = _np_target_order(pp) + clause_tgt  # "in Paris" goes first
    else:
        clause_tgt = clause_tgt + _np_target_order(pp)
    clause_tgt = clause_tgt + adv + verb  # verb-final
    tgt_order = speaker + clause_tgt + stop

    tgt_words: list[str] = []
    alignment: list[tuple[int, int]] = []
    tgt_entity_tokens: dict[int, list[int]] = {}
    for src_i, (word, label, ent) in tgt_order:
        if label is None:
            outs = LEXICON[word]
        elif label == "ORG":
            outs = [word]
        else:
            outs = [transliterate(word)]
        for w in outs:
            alignment.append((src_i, len(tgt_words)))
            if ent >= 0:
                tgt_entity_tokens.setdefault(ent, []).append(len(tgt_words))
            tgt_words.append(w)

    src_entities: dict[int, tuple[int, int, str]] = {}
    for i, (_, label, ent) in enumerate(src_words):
        if ent >= 0 and label is not None:
            s, _, _ = src_entities.get(ent, (i, i, label))
            src_entities[ent] = (s, i + 1, label)
    ents = sorted(src_entities)
    source = Example.from_words(pair_id, [w for w, _, _ in src_words],
                                token_spans=[src_entities[e] for e in ents], meta={"lang": SRC_LANG})
    tgt_triples = {e: (min(tgt_entity_tokens[e]), max(tgt_entity_tokens[e]) + 1, src_entities[e][2]) for e in ents}
    target = Example.from_words(pair_id, tgt_words, token_spans=sorted(tgt_triples.values()), meta={"lang": TGT_LANG})
    tgt_index = {(s.token_start, s.token_end): k for k, s in enumerate(target.spans)}
    src_index = {(s.token_start, s.token_end): k for k, s in enumerate(source.spans)}
    span_map = {src_index[src_entities[e][:2]]: tgt_index[tgt_triples[e][:2]] for e in ents}
    return SyntheticPair(pair_id, source, target, sorted(alignment), span_map)


def generate_pairs(n: int, *, seed: int = 0, id_prefix: str = "syn", unique: bool = False,
                   exclude: Iterable[str] = ()) -> list[SyntheticPair]:
    """``n`` synthetic sentence pairs, deterministic for a given ``seed``.

    Args:
        n: number of pairs.
        seed: random seed; different seeds give (mostly) different sentences.
        id_prefix: example ids are ``PREFIX-SEED-I``.
        unique: skip sentences already generated (and those in ``exclude``), e.g. for a held-out
            set that shares no sentence with the training data.
        exclude: source texts not to generate (only with ``unique``).
    """
    rng = random.Random(f"dsbuild-synthetic-{GRAMMAR_VERSION}-{seed}")
    gen = _Generator(rng)
    seen = set(exclude)
    out: list[SyntheticPair] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} unique sentences (got {len(out)})")
        gen.entity_counter = 0
        pair = _build_pair(f"{id_prefix}-{seed}-{len(out)}", gen.sentence())
        if unique:
            if pair.source.text in seen:
                continue
            seen.add(pair.source.text)
        out.append(pair)
    return out


def marked_texts(pairs: Sequence[SyntheticPair], markers: tuple[str, str] = MARKERS) -> list[tuple[str, str]]:
    """``(marked source, marked target)`` for each pair."""
    return [p.marked(markers) for p in pairs]


def training_corpus(n: int, *, seed: int = 0, marked_fraction: float = 0.5) -> list[tuple[str, str]]:
    """Parallel training text: ``n`` pairs, a ``marked_fraction`` of them with markers on both sides.

    Pairs without entities are always clean. The model trained on this mix translates clean
    input cleanly and carries markers when the input has them.
    """
    rng = random.Random(f"dsbuild-synthetic-mix-{seed}")
    out = []
    for p in generate_pairs(n, seed=seed, id_prefix="train"):
        if p.source.spans and rng.random() < marked_fraction:
            out.append(p.marked())
        else:
            out.append((p.source.text, p.target.text))
    return out


# ----------------------------------------------------------------------------- tiny Marian model
DEFAULT_HPARAMS: dict[str, Any] = {
    "n_train": 12000, "marked_fraction": 0.5, "vocab_size": 500, "d_model": 64, "layers": 2, "heads": 4,
    "ffn": 128, "max_len": 128, "batch_size": 64, "steps": 1200, "lr": 3e-3, "warmup": 150, "dropout": 0.0,
}


def tiny_marian_key(seed: int = 0, **hparams: Any) -> str:
    """A hash of the grammar (its output) and the training settings: the cache key of a model."""
    hp = {**DEFAULT_HPARAMS, **hparams, "seed": seed}
    sample = [(p.source.text, p.target.text) for p in generate_pairs(300, seed=12345)]
    blob = json.dumps({"grammar": GRAMMAR_VERSION, "sample": sample, "hp": hp,
                       "lexicon": LEXICON, "translit": TRANSLIT_RULES}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cached_tiny_marian(cache_dir: str | Path | None = None, *, seed: int = 0, **hparams: Any) -> Path:
    """The tiny model's folder, trained once and cached: ``CACHE/tiny-marian-<key>``.

    ``cache_dir`` defaults to ``$DSBUILD_TEST_CACHE`` or ``~/.cache/dsbuild-tests``. A file lock
    makes concurrent callers (two test sessions) wait for one training run instead of racing.
    """
    from filelock import FileLock

    base = Path(cache_dir or os.environ.get("DSBUILD_TEST_CACHE") or Path.home() / ".cache" / "dsbuild-tests")
    base.mkdir(parents=True, exist_ok=True)
    out = base / f"tiny-marian-{tiny_marian_key(seed, **hparams)}"
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").exists():
            train_tiny_marian(out, seed=seed, **hparams)
    return out


def _train_spm(texts: list[str], prefix: Path, vocab_size: int, seed: int) -> None:
    import sentencepiece as spm

    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, eos_id=0, unk_id=1, pad_id=2, bos_id=-1,
        user_defined_symbols=list(MARKERS), hard_vocab_limit=False, num_threads=1,
        minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False,
    )
    corpus.unlink()


def train_tiny_marian(out_dir: str | Path, *, seed: int = 0, threads: int | None = 1, **hparams: Any) -> dict[str, Any]:
    """Train a tiny sentencepiece tokenizer + MarianMTModel on the synthetic pair into ``out_dir``.

    The folder then loads with ``MarianMTModel.from_pretrained`` and ``MarianTokenizer.from_pretrained``
    (``source.spm``, ``target.spm``: one shared sentencepiece model, ``vocab.json``, ``config.json``
    with ``dsbuild_languages``). Returns the training report (time, steps, final loss), also written
    to ``out_dir/training.json``. Writes go to a temporary folder renamed at the end. ``threads``
    torch CPU threads (default 1: a model this small gains nothing from more, and on a busy
    machine several threads spin against each other and run many times slower).
    """
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    hp = {**DEFAULT_HPARAMS, **hparams}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # A unique name: a pid-named folder is shared by containers (pid 1 in each) writing to one cache.
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model folder it becomes is read by other users too
    t0, cpu0 = time.perf_counter(), time.process_time()
    random.seed(seed)
    torch.manual_seed(seed)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        corpus = training_corpus(hp["n_train"], seed=seed, marked_fraction=hp["marked_fraction"])
        _train_spm([s for s, _ in corpus] + [t for _, t in corpus], tmp / "spm", hp["vocab_size"], seed)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(tmp / "spm.model"))
        vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
        shutil.copy(tmp / "spm.model", tmp / "source.spm")
        shutil.move(tmp / "spm.model", tmp / "target.spm")
        (tmp / "spm.vocab").unlink(missing_ok=True)
        tok = MarianTokenizer(source_spm=str(tmp / "source.spm"), target_spm=str(tmp / "target.spm"),
                              vocab=str(tmp / "vocab.json"), source_lang=SRC_LANG, target_lang=TGT_LANG,
                              model_max_length=hp["max_len"])
        config = MarianConfig(
            vocab_size=len(vocab), d_model=hp["d_model"], encoder_layers=hp["layers"], decoder_layers=hp["layers"],
            encoder_attention_heads=hp["heads"], decoder_attention_heads=hp["heads"],
            encoder_ffn_dim=hp["ffn"], decoder_ffn_dim=hp["ffn"], max_position_embeddings=hp["max_len"],
            pad_token_id=vocab["<pad>"], eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"],
            forced_eos_token_id=vocab["</s>"], dropout=hp["dropout"], attention_dropout=0.0, activation_dropout=0.0,
            scale_embedding=True, share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
        )
        config.dsbuild_languages = {"source": [SRC_LANG], "target": [TGT_LANG]}
        config.dsbuild_synthetic = {"grammar": GRAMMAR_VERSION, "seed": seed, **hp}
        model = MarianMTModel(config)
        report = _train_loop(model, tok, corpus, hp, seed)
        model.eval()
        model.generation_config.max_length = hp["max_len"]
        model.generation_config.num_beams = 1
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        report.update({"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
                       "threads": torch.get_num_threads(), "hparams": hp, "seed": seed,
                       "vocab_size": len(vocab), "parameters": sum(p.numel() for p in model.parameters())})
        (tmp / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(old_threads)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("trained tiny Marian model in %.1f s -> %s", report["seconds"], out_dir)
    return report


def _train_loop(model: Any, tok: Any, corpus: list[tuple[str, str]], hp: dict[str, Any], seed: int) -> dict[str, Any]:
    import torch

    enc = tok([s for s, _ in corpus], text_target=[t for _, t in corpus], truncation=True, max_length=hp["max_len"])
    src_ids, tgt_ids = enc["input_ids"], enc["labels"]
    pad = model.config.pad_token_id
    # length-bucketed batches: sort by length, cut into batches, shuffle the batch order
    order = sorted(range(len(corpus)), key=lambda i: (len(src_ids[i]), len(tgt_ids[i])))
    batches = [order[i : i + hp["batch_size"]] for i in range(0, len(order), hp["batch_size"])]
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=0.0, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / hp["warmup"], max(0.05, 1 - s / hp["steps"])))
    model.train()
    t0 = time.perf_counter()
    step, losses = 0, []
    while step < hp["steps"]:
        rng.shuffle(batches)
        for batch in batches:
            if step >= hp["steps"]:
                break
            s_len = max(len(src_ids[i]) for i in batch)
            t_len = max(len(tgt_ids[i]) for i in batch)
            x = torch.full((len(batch), s_len), pad, dtype=torch.long)
            y = torch.full((len(batch), t_len), -100, dtype=torch.long)
            for r, i in enumerate(batch):
                x[r, : len(src_ids[i])] = torch.tensor(src_ids[i])
                y[r, : len(tgt_ids[i])] = torch.tensor(tgt_ids[i])
            out = model(input_ids=x, attention_mask=(x != pad).long(), labels=y)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            step += 1
            if step % 100 == 0:
                log.info("tiny marian step %d loss %.3f (%.1f s)", step, sum(losses[-50:]) / len(losses[-50:]),
                         time.perf_counter() - t0)
    return {"steps": step, "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4)}


@functools.lru_cache(maxsize=4)
def _training_sources(n_train: int, seed: int) -> frozenset[str]:
    """Source texts of a model's training data (memoised: fixtures ask for held-out sets repeatedly)."""
    return frozenset(p.source.text for p in generate_pairs(n_train, seed=seed, id_prefix="train"))


def held_out_pairs(model_dir: str | Path, n: int, *, seed: int = 999, id_prefix: str = "heldout") -> list[SyntheticPair]:
    """``n`` pairs with at least one entity that are not in the training data of the model in ``model_dir``."""
    info = json.loads((Path(model_dir) / "training.json").read_text())
    train_src = _training_sources(info["hparams"]["n_train"], info["seed"])
    pairs = generate_pairs(3 * n + 20, seed=seed, unique=True, exclude=train_src, id_prefix=id_prefix)
    return [p for p in pairs if p.source.spans][:n]


def evaluate_tiny_marian(model_dir: str | Path, n: int = 200, *, seed: int = 999, batch_size: int = 64) -> dict[str, float]:
    """Exact match and a corpus BLEU-like score (4-gram precision x brevity) on held-out sentences.

    The held-out sentences are generated with another seed and exclude every training sentence.
    Reports clean and marked inputs separately (marked: the output must carry the markers).
    """
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    hp = json.loads((Path(model_dir) / "training.json").read_text())["hparams"]
    pairs = held_out_pairs(model_dir, n, seed=seed)
    tok = MarianTokenizer.from_pretrained(str(model_dir))
    model = MarianMTModel.from_pretrained(str(model_dir)).eval()

    def run(texts: list[str]) -> list[str]:
        outs = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                gen = model.generate(**enc, num_beams=1, max_length=hp["max_len"])
            outs += tok.batch_decode(gen, skip_special_tokens=True)
        return outs

    clean_ref = [p.target.text for p in pairs]
    clean_hyp = run([p.source.text for p in pairs])
    marked = [p.marked() for p in pairs]
    marked_hyp = run([s for s, _ in marked])
    marked_ref = [t for _, t in marked]
    return {
        "n": len(pairs),
        "clean_exact": sum(h == r for h, r in zip(clean_hyp, clean_ref)) / len(pairs),
        "clean_bleu": simple_bleu(clean_hyp, clean_ref),
        "marked_exact": sum(h == r for h, r in zip(marked_hyp, marked_ref)) / len(pairs),
        "marked_bleu": simple_bleu(marked_hyp, marked_ref),
        "clean_outputs_with_markers": sum(any(m in h.split() for m in MARKERS) for h in clean_hyp) / len(pairs),
    }


def simple_bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (whitespace tokens, 1-4-grams, brevity penalty), in [0, 100]. No smoothing."""
    import math
    from collections import Counter

    match = [0] * 4
    total = [0] * 4
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs):
        hw, rw = h.split(), r.split()
        hyp_len += len(hw)
        ref_len += len(rw)
        for n in range(1, 5):
            hc = Counter(tuple(hw[i : i + n]) for i in range(len(hw) - n + 1))
            rc = Counter(tuple(rw[i : i + n]) for i in range(len(rw) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(0, len(hw) - n + 1)
    if min(match) == 0 or hyp_len == 0:
        return 0.0
    log_prec = sum(math.log(m / t) for m, t in zip(match, total)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return round(100 * bp * math.exp(log_prec), 2)
