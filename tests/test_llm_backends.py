"""LLM backends: the tiny topic LM, the transformers backend, the openai backend against a loopback
server with injected faults, the disk cache, and the vllm backend's mapping (with a fake vllm)."""

from __future__ import annotations

import socket
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from dsbuild.errors import ConfigError, DsbuildError, UnknownNameError
from dsbuild.llm import Sampling, make_llm
from dsbuild.llm.cache import LLMCache, cache_key
from dsbuild.llm.synthetic_topics import LABELS, topic_messages

FAST = {"backoff_base": 0.001, "backoff_max": 0.01}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def _client(server: Any, tmp_path: Path | None = None, **options: Any) -> Any:
    cache = {"cache_dir": tmp_path / "llm"} if tmp_path is not None else {"cache": False}
    return make_llm("openai", server.model, base_url=server.base_url, **{**FAST, **cache, **options})


def _accuracy(completions: list[Any], texts: list[dict[str, Any]]) -> float:
    return sum(c.texts and c.texts[0] == t["label"] for c, t in zip(completions, texts)) / len(texts)


# --------------------------------------------------------------------------- the tiny LM
def test_tiny_lm_learned_its_task(tiny_lm_report: dict[str, Any]) -> None:
    # Training cost is reported by scripts/llm_tiny_lm_report.py (about 40 s CPU), not timed here.
    assert tiny_lm_report["threads"] == 1
    assert tiny_lm_report["final_loss"] < 0.1


def test_transformers_generation_learned_labels(tiny_llm: Any, topic_texts: list[dict[str, Any]]) -> None:
    completions = tiny_llm.chat([topic_messages(t["text"]) for t in topic_texts], Sampling(max_tokens=8))
    # measured 0.9525 on 400 held-out texts (scripts/llm_tiny_lm_report.py --cached, seed 999)
    assert _accuracy(completions, topic_texts) >= 0.92
    for lang in ("en", "qsy"):
        sub = [(c, t) for c, t in zip(completions, topic_texts) if t["language"] == lang]
        assert _accuracy([c for c, _ in sub], [t for _, t in sub]) >= 0.85


def test_transformers_score_choices_agree_with_labels(tiny_llm: Any, topic_texts: list[dict[str, Any]]) -> None:
    msgs = [topic_messages(t["text"]) for t in topic_texts]
    scores = tiny_llm.score_choices(msgs, LABELS)
    assert all(set(s) == set(LABELS) and all(v <= 0 for v in s.values()) for s in scores)
    best = [max(s, key=s.get) for s in scores]
    assert sum(b == t["label"] for b, t in zip(best, topic_texts)) / len(topic_texts) >= 0.92
    chosen = tiny_llm.chat(msgs, Sampling(), choices=LABELS)
    assert [c.texts[0] for c in chosen] == best  # constrained chat = argmax of the scores
    # a label prefix must not win over the label: "sport" + end scores above "spor" + end
    one = tiny_llm.score_choices(msgs[:1], ["sport", "spor", "sports"])[0]
    assert topic_texts[0]["label"] != "sport" or one["sport"] > max(one["spor"], one["sports"])


def test_transformers_batching_does_not_change_answers(tiny_llm: Any, topic_texts: list[dict[str, Any]]) -> None:
    msgs = [topic_messages(t["text"]) for t in topic_texts[:12]]
    batched = [c.texts for c in tiny_llm.chat(msgs, Sampling(max_tokens=8))]
    single = [tiny_llm.chat([m], Sampling(max_tokens=8))[0].texts for m in msgs]
    assert batched == single


def test_transformers_json_answer_and_sampling_seeded(tiny_llm: Any, topic_texts: list[dict[str, Any]]) -> None:
    t = topic_texts[1]
    answer = tiny_llm.chat([topic_messages(t["text"], json_answer=True)], Sampling(max_tokens=12))[0].texts[0]
    assert answer == '{"label": "%s"}' % t["label"]
    s = Sampling(temperature=1.5, n=6, seed=3, max_tokens=8)
    first = tiny_llm.chat([topic_messages(t["text"])], s)[0].texts
    again = tiny_llm.chat([topic_messages(t["text"]), topic_messages(topic_texts[2]["text"])], s)[0].texts
    assert len(first) == 6 and first == again  # per-prompt seed: batch company does not matter
    picked = tiny_llm.chat([topic_messages(t["text"])], s, choices=LABELS)[0].texts
    assert len(picked) == 6 and set(picked) <= set(LABELS)


def test_transformers_truncation_reported(tiny_lm_path: Path, topic_texts: list[dict[str, Any]]) -> None:
    llm = make_llm("transformers", str(tiny_lm_path), cache=False, threads=1, max_input_tokens=40)
    long_text = " ".join(t["text"] for t in topic_texts[:3])
    short, long = llm.chat([[{"role": "user", "content": "Text: a .\nTopic:"}], topic_messages(long_text)],
                           Sampling(max_tokens=4))
    assert not short.truncated and long.truncated
    assert long.texts and long.texts[0] in LABELS  # the cut keeps the answer cue at the end
    assert llm.describe()["model"] == tiny_lm_path.name  # no local absolute path in provenance
    with pytest.raises(ConfigError, match="unknown option"):
        make_llm("transformers", str(tiny_lm_path), cache=False, bogus=1)


def test_transformers_missing_model_one_line(tmp_path: Path) -> None:
    with pytest.raises(DsbuildError) as err:
        make_llm("transformers", str(tmp_path / "no-such-model"), cache=False)
    assert "no-such-model" in _one_line(err.value)


# --------------------------------------------------------------------------- disk cache
def test_cache_hit_on_repeat_and_key_changes(tiny_lm_path: Path, tmp_path: Path,
                                             topic_texts: list[dict[str, Any]]) -> None:
    msgs = [topic_messages(t["text"]) for t in topic_texts[:6]]
    llm = make_llm("transformers", str(tiny_lm_path), cache_dir=tmp_path, threads=1)
    first = llm.chat(msgs, Sampling(max_tokens=8))
    assert llm.usage.requests == 6 and not any(c.cached for c in first)
    again = llm.chat(msgs, Sampling(max_tokens=8))
    assert all(c.cached for c in again) and [c.texts for c in again] == [c.texts for c in first]
    assert llm.usage.requests == 6 and llm.usage.cache_hits == 6
    llm.chat(msgs[:2], Sampling(max_tokens=8, seed=1))  # other sampling: other key
    assert llm.usage.requests == 8
    llm.close()
    # a new instance (a resumed build) reads the same file
    resumed = make_llm("transformers", str(tiny_lm_path), cache_dir=tmp_path, threads=1)
    assert all(c.cached for c in resumed.chat(msgs, Sampling(max_tokens=8)))
    assert resumed.usage.requests == 0


def test_cache_key_covers_every_input() -> None:
    ns = {"backend": "openai", "model": "m", "model_id": "m"}
    msgs = [{"role": "user", "content": "hi"}]
    base = cache_key(ns, Sampling().to_dict(), None, None, msgs)
    variants = [
        cache_key({**ns, "model_id": "m2"}, Sampling().to_dict(), None, None, msgs),
        cache_key(ns, Sampling(temperature=0.7).to_dict(), None, None, msgs),
        cache_key(ns, Sampling(max_tokens=5).to_dict(), None, None, msgs),
        cache_key(ns, Sampling(top_p=0.9).to_dict(), None, None, msgs),
        cache_key(ns, Sampling(n=2).to_dict(), None, None, msgs),
        cache_key(ns, Sampling(seed=1).to_dict(), None, None, msgs),
        cache_key(ns, Sampling().to_dict(), ["a", "b"], None, msgs),
        cache_key(ns, Sampling().to_dict(), None, {"type": "object"}, msgs),
        cache_key(ns, Sampling().to_dict(), None, None, [{"role": "user", "content": "hi!"}]),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert base == cache_key(dict(ns), Sampling().to_dict(), None, None, [dict(msgs[0])])


def test_cache_pickles_and_keeps_failures_out(tmp_path: Path) -> None:
    import pickle

    from dsbuild.llm.base import Completion

    cache = LLMCache(tmp_path)
    cache.put_many([("k1", Completion(texts=["a"], truncated=True)), ("k2", Completion(texts=[], error="x"))])
    copy = pickle.loads(pickle.dumps(cache))
    got = copy.get_many(["k1", "k2"])
    assert list(got) == ["k1"] and got["k1"].cached and got["k1"].truncated and got["k1"].texts == ["a"]


# --------------------------------------------------------------------------- openai backend
def test_openai_answers_from_tiny_lm(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    texts = topic_texts[:24]
    llm = _client(llm_server)
    free = llm.chat([topic_messages(t["text"]) for t in texts], Sampling(max_tokens=8))
    assert _accuracy(free, texts) >= 0.9
    constrained = llm.chat([topic_messages(t["text"]) for t in texts], Sampling(), choices=LABELS)
    assert _accuracy(constrained, texts) >= 0.9  # {"label": x} unwrapped to x
    body = llm_server.bodies[-1]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == list(LABELS)
    info = llm.describe()
    assert info["server_model_id"] == llm_server.root and info["response_model"] == llm_server.model
    assert llm.usage.requests == 48 and llm.usage.prompt_tokens > 0 and llm.usage.completion_tokens > 0


def test_openai_retries_5xx_then_succeeds(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    t = topic_texts[0]
    llm_server.inject("500", 2, match=t["text"])
    llm = _client(llm_server)
    c = llm.chat([topic_messages(t["text"])], Sampling())[0]
    assert c.error is None and c.texts == [t["label"]]
    assert llm_server.requests_for(t["text"]) == 3
    assert llm.usage.retries == 2 and llm.usage.requests == 3 and llm.usage.failures == 0


def test_openai_honours_retry_after(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    t = topic_texts[1]
    llm_server.inject("429", 1, match=t["text"], retry_after=0.6)
    llm = _client(llm_server)  # backoff alone would wait ~1 ms
    assert llm.chat([topic_messages(t["text"])], Sampling())[0].texts == [t["label"]]
    first, second = llm_server.request_times
    assert second - first >= 0.6


def test_openai_attempt_cap_gives_item_error(llm_server: Any, tmp_path: Path,
                                             topic_texts: list[dict[str, Any]]) -> None:
    bad, good = topic_texts[2], topic_texts[3]
    llm_server.inject("500", 100, match=bad["text"])
    llm = _client(llm_server, tmp_path, max_attempts=3)
    out = llm.chat([topic_messages(bad["text"]), topic_messages(good["text"])], Sampling())
    assert out[0].texts == [] and out[0].error == "HTTP 500 after 3 attempts"
    assert out[1].error is None and out[1].texts == [good["label"]]
    assert llm_server.requests_for(bad["text"]) == 3
    assert llm.usage.failures == 1 and llm.usage.retries == 2
    # a failure is not cached: the next run asks again; the good item comes from the cache
    llm.chat([topic_messages(bad["text"]), topic_messages(good["text"])], Sampling())
    assert llm_server.requests_for(bad["text"]) == 6 and llm_server.requests_for(good["text"]) == 1


def test_openai_timeout_truncated_body_retried(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    t = topic_texts[4]
    llm_server.inject("timeout", 1, match=t["text"], seconds=1.0)
    llm_server.inject("truncated", 1, match=t["text"])
    llm = _client(llm_server, timeout=0.3, max_attempts=3)
    c = llm.chat([topic_messages(t["text"])], Sampling())[0]
    assert c.error is None and c.texts == [t["label"]] and llm.usage.retries == 2
    llm_server.inject("timeout", 2, match=t["text"], seconds=1.0)
    c = _client(llm_server, timeout=0.3, max_attempts=2).chat([topic_messages(t["text"])], Sampling())[0]
    assert c.error == "timeout (0.3 s) after 2 attempts"


def test_openai_out_of_schema_answer_returned_raw(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    t = topic_texts[5]
    llm_server.inject("out_of_schema", 1, match=t["text"])
    c = _client(llm_server).chat([topic_messages(t["text"])], Sampling(), choices=LABELS)[0]
    assert c.error is None and c.texts == ["weather"]  # the caller validates and rejects


def test_openai_response_format_400_fallback_remembered(llm_server: Any,
                                                        topic_texts: list[dict[str, Any]]) -> None:
    llm_server.reject_response_format = True
    llm = _client(llm_server, max_concurrency=1)
    msgs = [topic_messages(t["text"]) for t in topic_texts[:3]]
    out = llm.chat(msgs, Sampling(), choices=LABELS)
    assert [c.texts[0] for c in out] == [t["label"] for t in topic_texts[:3]]
    sent = [b.get("response_format", {}).get("type") for b in llm_server.bodies]
    assert sent == ["json_schema", "json_object", None, None, None]  # each refused form asked once, never again
    assert llm.describe()["structured_output"] is None
    # a server with JSON mode but no schemas (gpt-4o-2024-05-13): json_object from then on
    llm_server.reset()
    llm_server.reject_response_format = "json_schema"
    llm = _client(llm_server, max_concurrency=1)
    out = llm.chat(msgs, Sampling(), choices=LABELS)
    assert [c.texts[0] for c in out] == [t["label"] for t in topic_texts[:3]]
    sent = [b.get("response_format", {}).get("type") for b in llm_server.bodies]
    assert sent == ["json_schema", "json_object", "json_object", "json_object"]
    assert llm.describe()["structured_output"] == "json_object"


def test_openai_bad_key_one_line(llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    llm_server.api_key = "right-key"
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    with pytest.raises(DsbuildError) as err:
        _client(llm_server).chat([topic_messages("goal .")], Sampling())
    text = _one_line(err.value)
    assert "401" in text and "OPENAI_API_KEY" in text and "wrong-key" not in text
    monkeypatch.setenv("OPENAI_API_KEY", "right-key")
    assert _client(llm_server).chat([topic_messages("goal match team .")], Sampling())[0].error is None
    llm_server.inject("401", 1)  # a key revoked mid-run stops the build too
    with pytest.raises(DsbuildError, match="API key"):
        _client(llm_server).chat([topic_messages("goal match team .")], Sampling())


def test_openai_unreachable_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    llm = make_llm("openai", "m", base_url=url, cache=False, **FAST)
    with pytest.raises(DsbuildError) as err:
        llm.chat([topic_messages("goal .")], Sampling())
    text = _one_line(err.value)
    assert url in text and "running" in text


def test_openai_unknown_model_lists_served(llm_server: Any) -> None:
    llm = make_llm("openai", "no-such-model", base_url=llm_server.base_url, cache=False, **FAST)
    with pytest.raises(DsbuildError) as err:
        llm.chat([topic_messages("goal .")], Sampling())
    text = _one_line(err.value)
    assert "no-such-model" in text and llm_server.model in text


def test_openai_concurrency_bound(llm_server: Any, topic_texts: list[dict[str, Any]]) -> None:
    llm_server.delay = 0.1
    llm = _client(llm_server, max_concurrency=3)
    out = llm.chat([topic_messages(t["text"]) for t in topic_texts[:12]], Sampling())
    assert all(c.error is None for c in out)
    assert llm_server.max_in_flight == 3  # requests did overlap, and never more than 3


def test_openai_cache_hit_on_repeat(llm_server: Any, tmp_path: Path, topic_texts: list[dict[str, Any]]) -> None:
    msgs = [topic_messages(t["text"]) for t in topic_texts[:8]]
    llm = _client(llm_server, tmp_path)
    first = llm.chat(msgs, Sampling())
    assert llm_server.total_requests == 8
    again = _client(llm_server, tmp_path).chat(msgs, Sampling())  # a resumed build: new instance
    assert llm_server.total_requests == 8 and all(c.cached for c in again)
    assert [c.texts for c in again] == [c.texts for c in first]
    _client(llm_server, tmp_path).chat(msgs[:3], Sampling(temperature=0.5, seed=7))
    assert llm_server.total_requests == 11  # other sampling parameters: asked again


def test_openai_options_checked(llm_server: Any) -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        _client(llm_server, max_concurrency=0)
    with pytest.raises(ConfigError, match="unknown option"):
        _client(llm_server, concurrency=3)
    with pytest.raises(ConfigError, match="http"):
        make_llm("openai", "m", base_url="localhost:8000", cache=False)
    with pytest.raises(UnknownNameError, match="openai"):
        make_llm("opnai", "m")
    with pytest.raises(ConfigError):
        Sampling(temperature=-1)


# --------------------------------------------------------------------------- vllm backend
def test_vllm_missing_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(DsbuildError) as err:
        make_llm("vllm", "some/model", cache=False)
    text = _one_line(err.value)
    assert "pip install vllm" in text and "vllm serve" in text and "openai" in text


def _fake_vllm(new_api: bool) -> tuple[types.ModuleType, types.ModuleType, dict[str, Any]]:
    seen: dict[str, Any] = {}

    class Params:
        def __init__(self, **kw: Any) -> None:
            self.kw = kw

    class FakeLLM:
        def __init__(self, **kw: Any) -> None:
            seen["engine"] = kw

        def chat(self, conversations: list[Any], params: Any, use_tqdm: bool = True) -> list[Any]:
            seen["chat"] = (conversations, params)
            answer = lambda i: types.SimpleNamespace(text=f" ans{i} ", token_ids=[1, 2])  # noqa: E731
            return [types.SimpleNamespace(prompt_token_ids=[0] * 5, outputs=[answer(i) for i in range(params.kw["n"])])
                    for _ in conversations]

    vllm = types.ModuleType("vllm")
    vllm.__version__ = "0.99" if new_api else "0.6.6"
    vllm.LLM = FakeLLM
    vllm.SamplingParams = Params
    sp = types.ModuleType("vllm.sampling_params")
    setattr(sp, "StructuredOutputsParams" if new_api else "GuidedDecodingParams", Params)
    return vllm, sp, seen


@pytest.mark.parametrize("new_api", [True, False])
def test_vllm_parameter_mapping(monkeypatch: pytest.MonkeyPatch, new_api: bool) -> None:
    vllm, sp, seen = _fake_vllm(new_api)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    llm = make_llm("vllm", "org/model", cache=False, max_input_tokens=5, tensor_parallel_size=2)
    assert seen["engine"] == {"model": "org/model", "revision": None, "tensor_parallel_size": 2}
    msgs = [topic_messages("goal ."), topic_messages("vote .")]
    out = llm.chat(msgs, Sampling(temperature=0.7, max_tokens=9, top_p=0.9, n=2, seed=4), choices=LABELS)
    conversations, params = seen["chat"]
    assert conversations == msgs
    key = "structured_outputs" if new_api else "guided_decoding"
    assert params.kw.pop(key).kw == {"choice": list(LABELS)}
    assert params.kw == {"n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 9, "seed": 4,
                         "truncate_prompt_tokens": 5}
    assert [c.texts for c in out] == [["ans0", "ans1"]] * 2 and all(c.truncated for c in out)
    assert llm.usage.to_dict()["completion_tokens"] == 8 and llm.usage.requests == 2
    llm.chat(msgs[:1], Sampling(), json_schema={"type": "object"})
    assert seen["chat"][1].kw[key].kw == {"json": {"type": "object"}}
    assert llm.describe()["vllm_version"] == vllm.__version__


def test_backends_registered_and_score_only_local(llm_server: Any) -> None:
    from dsbuild.registry import llms

    assert {"openai", "transformers", "vllm"} <= set(llms.names())
    with pytest.raises(DsbuildError, match="cannot score"):
        _client(llm_server).score_choices([topic_messages("goal .")], LABELS)
    start = time.monotonic()
    assert _client(llm_server).chat([], Sampling()) == []
    assert time.monotonic() - start < 5


def test_answers_cached_as_they_arrive(llm_server: Any, tmp_path: Path, topic_texts: list[dict[str, Any]]) -> None:
    msgs = [topic_messages(t["text"]) for t in topic_texts[:3]]
    llm_server.inject("401", 1, match=topic_texts[2]["text"])  # the run dies on the third item
    with pytest.raises(DsbuildError):
        _client(llm_server, tmp_path, max_concurrency=1).chat(msgs, Sampling())
    resumed = _client(llm_server, tmp_path, max_concurrency=1)
    out = resumed.chat(msgs, Sampling())
    assert [c.cached for c in out] == [True, True, False]  # the first two were kept
    assert llm_server.requests_for(topic_texts[0]["text"]) == 1


def test_transformers_fallback_template(tiny_lm_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "no-template"
    shutil.copytree(tiny_lm_path, folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.chat_template = None
    for f in folder.glob("*chat_template*"):
        f.unlink()
    tok.save_pretrained(str(folder))
    llm = make_llm("transformers", str(folder), cache=False, threads=1)
    assert llm.describe()["chat_template"] == "fallback" and "no chat template" in caplog.text
    prompt = llm._render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert prompt == "system: S\nuser: U\nassistant:"
    assert llm.chat([[{"role": "user", "content": "U"}]], Sampling(max_tokens=3))[0].error is None


def test_transformers_prompt_cut_to_the_model_context(tiny_llm: Any, topic_texts: list[dict[str, Any]]) -> None:
    # no max_input_tokens: a prompt over the tiny LM's 256-token context is still cut to fit (flagged),
    # never an indexing error
    assert tiny_llm.context == 256 and tiny_llm.max_input_tokens is None
    long = topic_messages(" ".join(t["text"] for t in topic_texts[:30]))
    assert len(tiny_llm._ids(tiny_llm._render(long))) > 256
    gen, short = tiny_llm.chat([long, topic_messages(topic_texts[0]["text"])], Sampling(max_tokens=4))
    assert gen.truncated and gen.error is None and gen.texts[0] in LABELS and not short.truncated
    (scored,) = tiny_llm.score_choices([long], LABELS)
    assert set(scored) == set(LABELS)
    chosen = tiny_llm.choose([long, topic_messages(topic_texts[0]["text"])], LABELS)
    assert chosen[0].truncated and chosen[0].texts[0] == max(scored, key=scored.get)
    assert chosen[1].texts == [topic_texts[0]["label"]] and not chosen[1].truncated
    with pytest.raises(ConfigError, match="lower max_tokens"):
        tiny_llm.chat([long], Sampling(max_tokens=254))
