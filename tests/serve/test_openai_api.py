"""The official `openai` client against the live server: completions, chat, streaming, n with
a seed, logprobs, token-id prompts and embeddings that match our own BertModel."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from lmstack.models import BertModel, load_model, mean_pool
from lmstack.tokenizer import Tokenizer

CHAT = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a quick brown animal."}]


def test_models_lists_both_kinds(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"tiny", "minilm"}
    assert models["tiny"].object == "model"
    assert client.models.retrieve("minilm").id == "minilm"


def test_completion_usage_and_greedy_determinism(client, live):
    r = client.completions.create(model="tiny", prompt="The quick brown", max_tokens=12,
                                  temperature=0)
    again = client.completions.create(model="tiny", prompt="The quick brown", max_tokens=12,
                                      temperature=0)
    choice = r.choices[0]
    assert r.object == "text_completion" and r.model == "tiny"
    assert choice.text and choice.text == again.choices[0].text
    assert choice.finish_reason in ("length", "stop")
    tok = live.models["tiny"].tokenizer
    assert r.usage.prompt_tokens == len(tok.encode("The quick brown"))
    assert r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streamed_completion_equals_non_streamed(client):
    kwargs = {"model": "tiny", "prompt": "A server streams", "max_tokens": 20, "temperature": 0}
    whole = client.completions.create(**kwargs)
    chunks = list(client.completions.create(**kwargs, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason and not any(finishes[:-1])
    # include_usage: one last chunk with no choices carries the totals.
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_and_streamed_chat_agree(client):
    whole = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16,
                                           temperature=0)
    msg = whole.choices[0].message
    assert whole.object == "chat.completion" and msg.role == "assistant" and msg.content
    chunks = list(client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16,
                                                 temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == msg.content
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_max_completion_tokens_and_stop(client):
    r = client.chat.completions.create(model="tiny", messages=CHAT, temperature=0,
                                       max_completion_tokens=5)
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
    text = client.completions.create(model="tiny", prompt="The quick brown", max_tokens=12,
                                     temperature=0).choices[0].text
    stop = text[3:6]
    cut = client.completions.create(model="tiny", prompt="The quick brown", max_tokens=12,
                                    temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[:text.index(stop)]


def test_n_with_seed_is_reproducible(client):
    kwargs = {"model": "tiny", "prompt": "Return the", "max_tokens": 12, "temperature": 1.0,
              "n": 3, "seed": 1234}
    a = client.completions.create(**kwargs)
    b = client.completions.create(**kwargs)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    assert len({c.text for c in a.choices}) > 1, "n choices should differ from one another"
    # The prompt is billed once, the completions of all n choices together.
    assert a.usage.prompt_tokens == 2 and 3 <= a.usage.completion_tokens <= 36
    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=8, n=2,
                                          seed=7, stream=True)
    texts = {0: "", 1: ""}
    for chunk in chat:
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
    again = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=8, n=2,
                                           seed=7)
    assert [texts[0], texts[1]] == [c.message.content for c in again.choices]


def test_several_prompts_and_token_ids(client, live):
    tok = live.models["tiny"].tokenizer
    ids = tok.encode("def add")
    r = client.completions.create(model="tiny", prompt=["The quick", "def add"], max_tokens=6,
                                  temperature=0)
    by_ids = client.completions.create(model="tiny", prompt=ids, max_tokens=6, temperature=0)
    assert [c.index for c in r.choices] == [0, 1]
    assert by_ids.choices[0].text == r.choices[1].text
    echo = client.completions.create(model="tiny", prompt="def add", max_tokens=6,
                                     temperature=0, echo=True)
    assert echo.choices[0].text == "def add" + r.choices[1].text


def test_logprobs(client):
    r = client.completions.create(model="tiny", prompt="The quick", max_tokens=4,
                                  temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == r.choices[0].text
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) <= 3 and chosen <= 0
        assert chosen == pytest.approx(max(top.values()), abs=1e-5)  # greedy picks the top
    assert lp.text_offset[0] == 0
    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=3,
                                          temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == 3 and all(len(t.top_logprobs) == 2 for t in content)
    assert "".join(t.token for t in content) == chat.choices[0].message.content


def test_json_response_format_is_accepted_and_steers(client):
    plain = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=2,
                                           temperature=0)
    steered = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=2,
                                             temperature=0,
                                             response_format={"type": "json_object"})
    # The JSON instruction went into the prompt (see chat.py for what is not guaranteed).
    assert steered.usage.prompt_tokens > plain.usage.prompt_tokens


def _our_embeddings(folder, texts: list[str]) -> np.ndarray:
    model = load_model(folder, model_class=BertModel)
    batch = Tokenizer.from_folder(folder)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden, _ = model(batch["input_ids"], batch["attention_mask"],
                          batch.get("token_type_ids"))
    return mean_pool(hidden, batch["attention_mask"]).numpy()


def test_embeddings_match_bert_mean_pool(client, minilm_folder):
    texts = ["This is an example sentence", "Each sentence is converted", "短い"]
    floats = client.embeddings.create(model="minilm", input=texts, encoding_format="float")
    # The openai client asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model="minilm", input=texts)
    got = np.array([d.embedding for d in floats.data])
    want = _our_embeddings(minilm_folder, texts)
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.array([d.embedding for d in default.data]), got, atol=1e-6)
    # The reference vector measured with sentence-transformers (FIELD_NOTES.md).
    np.testing.assert_allclose(got[0, :5], [0.06766, 0.06350, 0.04871, 0.07930, 0.03745],
                               atol=1e-4)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0


def test_embeddings_raw_base64(live):
    import httpx

    r = httpx.post(live.base_url + "/embeddings", json={
        "model": "minilm", "input": "This is an example sentence", "encoding_format": "base64"})
    vec = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    assert vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5


def test_legacy_top_logprobs_keep_the_likeliest_of_tokens_sharing_a_text():
    from lmstack.serve.completions import top_by_text

    # Two byte tokens that are each half a character both decode to U+FFFD.
    top = [{"token": "\ufffd", "logprob": -1.5}, {"token": "a", "logprob": -1.7},
           {"token": "\ufffd", "logprob": -2.1}]
    assert top_by_text(top) == {"\ufffd": -1.5, "a": -1.7}
