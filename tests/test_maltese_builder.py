"""The `maltese` builder: embedded default, local CoNLL-U / JSONL / CSV inputs, a load_dataset source, rejects."""

from __future__ import annotations

import json

import datasets
import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError
from dsbuild.executor import build
from dsbuild.maltese.pipelines import builtin_pipelines, get_pipeline
from dsbuild.registry import builders


def _maltese(**opts):
    cls = builders.get("maltese")
    return cls(resolve_options(cls.Options, opts))


def _rows(path, config, split="train"):
    return datasets.load_dataset("parquet", data_files=str(path / config / f"{split}-*.parquet"), split="train")


def test_default_build_is_offline_and_complete(maltese_default_build, maltese_sentences):
    res = maltese_default_build
    assert set(res.counts) == set(builtin_pipelines())
    for config, splits in res.counts.items():
        assert splits["train"] == {"in": 395, "out": 395, "rejected": 0}, config
    raw = _rows(res.path, "raw")
    tr = _rows(res.path, "transliterate_arabic")
    assert raw["tokens"] == tr["tokens"] == [s.tokens for s in maltese_sentences]
    for row in tr:
        n = len(row["tokens"])
        assert len(row["processed_tokens"]) == len(row["etymology"]) == len(row["actions"]) == len(row["etymology_gold"]) == n
    names = tr.features["etymology"].feature.names
    row = tr[0]
    for tok, new, ety in zip(row["tokens"], row["processed_tokens"], row["etymology"]):
        if names[ety] != "Arabic":
            assert new == tok
    assert row["processed_tokens"] != row["tokens"]
    assert raw[0]["processed_tokens"] == raw[0]["tokens"]


def test_default_card_names_pipeline_versions_accuracy_caveat_licences(maltese_default_build):
    card = (maltese_default_build.path / "README.md").read_text(encoding="utf-8")
    prov = json.loads((maltese_default_build.path / "provenance.json").read_text())
    facts = prov["facts"]["maltese"]
    assert facts["classifier_version"] in card
    assert "transliterate_arabic_translate_en" in card and "| keep |" in card
    assert "word_translations/mt-en.tsv" in card and facts["tables_version"]["word_translations/mt-en.tsv"] in card
    assert "word-level machine-translation tables" in card
    assert "MIT" in card
    if facts["classifier_cv"]:
        assert "cross-validation by sentence" in card
        assert f"{100 * facts['classifier_cv']['accuracy']:.2f}%" in card
    stats = facts["pipeline_stats"]["transliterate_all"]["train"]
    assert stats["tokens"] == 8851 and stats["actions"] == {"transliterate": 8851}
    assert prov["quality"]["etymology_on_input_gold"]["tokens"] == 8851


def test_conllu_source_keeps_labels(tmp_path):
    text = ("# sent_id = s1\n# text = Il-kelb qabeż.\n"
            "1\tIl-\til-\tDET\tDEFART\t_\t2\tdet\t_\t_\n2\tkelb\tkelb\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
            "3\tqabeż\tqabeż\tVERB\tVV\t_\t0\troot\t_\t_\n4\t.\t.\tPUNCT\tX.PUN\t_\t3\tpunct\t_\t_\n\n"
            "# sent_id = s2\n1\tbroken\n\n"
            "# sent_id = s3\n1\tIva\tiva\tINTJ\tINT\t_\t0\troot\t_\t_\n\n")
    src = tmp_path / "mt.conllu"
    src.write_text(text, encoding="utf-8")
    res = build(_maltese(source=str(src), pipelines=["raw", "transliterate_arabic"]), tmp_path / "out")
    assert res.counts["transliterate_arabic"]["train"] == {"in": 3, "out": 2, "rejected": 1}
    rows = _rows(res.path, "transliterate_arabic")
    assert rows[0]["upos"] == ["DET", "NOUN", "VERB", "PUNCT"] and rows[0]["head"] == ["2", "3", "0", "3"]
    assert rows[0]["processed_tokens"][0] == "ال"
    rejects = pq.read_table(res.path / "rejects.parquet").to_pylist()
    assert {r["reason"] for r in rejects} == {"malformed-line"} and len(rejects) == 2  # one per config


def test_token_jsonl_bad_rows_are_rejected_with_reasons(tmp_path):
    lines = [
        {"id": "ok", "tokens": ["Il-", "Prim", "Ministru", "Robert", "Abela"], "ner_tags": ["O", "O", "O", "B-PER", "I-PER"]},
        {"id": "short", "tokens": ["Il-", "Qorti"], "ner_tags": ["O"]},
        {"id": "nolabels", "tokens": ["Il-", "Qorti"]},
        {"id": "empty", "tokens": ["", "Qorti"], "ner_tags": ["O", "B-ORG"]},
        {"id": "unknown", "tokens": ["Il-", "Qorti"], "ner_tags": ["O", "B-COURT"]},
        {"id": "ints", "tokens": ["Robert", "Abela"], "ner_tags": [1, 2]},
    ]
    src = tmp_path / "mapa.jsonl"
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    res = build(_maltese(source=str(src), pipelines=["transliterate_arabic_translate_en"], label_names=names),
                tmp_path / "out")
    assert res.counts["transliterate_arabic_translate_en"]["train"] == {"in": 6, "out": 2, "rejected": 4}
    rows = _rows(res.path, "transliterate_arabic_translate_en")
    assert rows[0]["ner_tags"] == ["O", "O", "O", "B-PER", "I-PER"]
    # each token went where its predicted etymology routes it (a new surname such as "Abela" may be
    # predicted Arabic: the classifier's novel-word accuracy is about 88%, see the card)
    pipeline = get_pipeline("transliterate_arabic_translate_en")
    labels = rows.features["etymology"].feature.names
    for row in rows:
        for tok, new, ety, action in zip(row["tokens"], row["processed_tokens"], row["etymology"], row["actions"]):
            assert action == pipeline.routing[labels[ety]], (tok, action)
            if action == "keep":
                assert new == tok
            elif action == "transliterate":
                assert any("\u0600" <= c <= "\u06ff" for c in new), (tok, new)
    assert rows[1]["ner_tags"] == ["B-PER", "I-PER"]  # integer labels mapped through label_names
    reasons = {r["id"]: r["reason"] for r in pq.read_table(res.path / "rejects.parquet").to_pylist()}
    assert reasons == {"short": "label-length-mismatch", "nolabels": "missing-labels", "empty": "empty-token",
                       "unknown": "unknown-label"}


def test_csv_sentiment_source_keeps_every_row(tmp_path):
    src = tmp_path / "sentiment.csv"
    src.write_text('text,label\nIl-film kien tajjeb ħafna,positive\n"Qal ""iva"", imma",neutral\n'
                   'Rajt 12" TV ġdid,positive\n"Dan mhux sew,negative\nXi ħsara!,negative\n', encoding="utf-8")
    res = build(_maltese(source=str(src), pipelines=["transliterate_arabic"]), tmp_path / "out")
    assert res.counts["transliterate_arabic"]["train"] == {"in": 5, "out": 5, "rejected": 0}
    rows = _rows(res.path, "transliterate_arabic")
    assert rows["label"] == ["positive", "neutral", "positive", "negative", "negative"]
    assert rows[1]["text"] == 'Qal "iva", imma'
    assert rows[0]["tokens"] == ["Il-", "film", "kien", "tajjeb", "ħafna"]


def test_load_dataset_source_keeps_classlabel_ints(tmp_path):
    folder = tmp_path / "hubdata"
    feats = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.List(datasets.Value("string")),
                               "ner_tags": datasets.List(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = datasets.Dataset.from_list([{"id": "a", "tokens": ["Robert", "Abela", "qal"], "ner_tags": [1, 2, 0]}],
                                    features=feats)
    folder.mkdir()
    ds.to_parquet(str(folder / "train.parquet"))
    res = build(_maltese(source=str(folder), format="hub", pipelines=["raw"]), tmp_path / "out")
    rows = _rows(res.path, "raw")
    assert rows[0]["ner_tags"] == [1, 2, 0]
    assert rows.features["ner_tags"].feature.names == ["O", "B-PER", "I-PER"]


def test_bad_options():
    with pytest.raises(ConfigError, match="Did you mean"):
        _maltese(pipelines=["transliterate_arabik"]).configs()
    with pytest.raises(ConfigError, match="format"):
        _maltese(format="xml").configs()


def test_same_options_give_identical_files(tmp_path):
    src = tmp_path / "s.conllu"
    src.write_text("# sent_id = a\n1\tIl-\til-\tDET\tDEFART\t_\t2\tdet\t_\t_\n2\tkelb\tkelb\tNOUN\tNN\t_\t0\troot\t_\t_\n\n",
                   encoding="utf-8")
    outs = [build(_maltese(source=str(src), pipelines=["transliterate_arabic_translate_it"]), tmp_path / d).path
            for d in ("one", "two")]
    for rel in ("README.md", "transliterate_arabic_translate_it/train-00000-of-00001.parquet", "quality.json"):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel


def test_non_deterministic_transliteration_option(tmp_path):
    src = tmp_path / "s.conllu"
    src.write_text("# sent_id = a\n1\tIl-\til-\tDET\tDEFART\t_\t2\tdet\t_\t_\n2\tkelma\tkelma\tNOUN\tNN\t_\t0\troot\t_\t_\n\n",
                   encoding="utf-8")
    res = build(_maltese(source=str(src), pipelines=["transliterate_all"], transliteration="non_deterministic"),
                tmp_path / "out")
    row = _rows(res.path, "transliterate_all")[0]
    assert row["processed_tokens"] == ["ال", "كلمة"] and row["processed_text"] == "الكلمة"
    prov = json.loads((res.path / "provenance.json").read_text())
    assert prov["facts"]["maltese"]["transliteration"]["mode"] == "non_deterministic"
    with pytest.raises(ConfigError, match="transliteration mode"):
        build(_maltese(source=str(src), transliteration="random"), tmp_path / "bad")
