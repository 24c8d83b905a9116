"""Streaming text: deltas never split a UTF-8 character, never show part of a stop string,
and add up to exactly the final text."""

from __future__ import annotations

from engine_helpers import ScriptedLM

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.detokenizer import IncrementalDetokenizer, StopChecker

TEXT = "Hi 你好，世界！ 🙂🚀 café done. END tail"


def stream(engine: Engine, prompt: list[int], params: SamplingParams) -> list:
    engine.add_request(prompt, params)
    outs = []
    while engine.has_unfinished():
        outs.extend(engine.step())
    return outs


def test_tokenizer_splits_characters_across_tokens(tokenizer):
    # The premise of the streaming tests: some tokens decode to half a character.
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids)


def test_incremental_detokenizer_never_splits_utf8(tokenizer):
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer, tokenizer.encode("prompt: "))
    deltas = [detok.add(i) for i in ids] + [detok.flush()]
    assert "".join(deltas) == TEXT
    assert not any("\ufffd" in d for d in deltas)
    assert sum(1 for d in deltas if d) > 10  # it really streamed, not one lump at the end


def test_engine_streams_chinese_and_emoji_whole(tokenizer):
    prompt = tokenizer.encode("Say hi:")
    script = tokenizer.encode(TEXT, add_special_tokens=False)
    engine = Engine(ScriptedLM(script, len(prompt), len(tokenizer)), tokenizer)
    outs = stream(engine, prompt, SamplingParams(max_tokens=len(script), ignore_eos=True))
    assert "".join(o.text for o in outs) == TEXT
    assert not any("\ufffd" in o.text for o in outs)
    assert [t for o in outs for t in o.token_ids] == script
    assert outs[-1].finished and outs[-1].finish_reason == "length"


def test_stop_string_is_cut_and_never_partly_shown(tokenizer):
    prompt = tokenizer.encode("Say hi:")
    script = tokenizer.encode(TEXT, add_special_tokens=False)
    engine = Engine(ScriptedLM(script, len(prompt), len(tokenizer)), tokenizer)
    outs = stream(engine, prompt, SamplingParams(max_tokens=100, stop=["END", "界！ 🙂X"]))
    text = "".join(o.text for o in outs)
    assert text == TEXT[:TEXT.index("END")]
    assert outs[-1].finish_reason == "stop"
    # The held-back "界！ 🙂" (a prefix of the second stop string) came out only once the
    # next token ruled that stop string out; no delta ever ended inside "END".
    for o in outs[:-1]:
        assert not o.text.endswith(("E", "EN"))
    assert engine.stats["free_blocks"] == engine.stats["total_blocks"]


def test_stop_checker_holds_back_prefixes():
    sc = StopChecker(["</s>", "\n\n"])
    assert sc.add("Hello <") == "Hello "
    assert sc.add("/") == ""
    assert sc.add("x>") == "</x>"
    assert sc.add(" ok\n") == " ok"
    assert sc.add("\nmore") == "" and sc.stopped
    assert sc.text == "Hello </x> ok"
    sc = StopChecker(["abc"])
    assert sc.add("xxab") == "xx"
    assert sc.flush() == "ab"  # at the end, a mere prefix is just text


def test_stop_string_spanning_many_tokens(tokenizer):
    prompt = tokenizer.encode("Go:")
    script = tokenizer.encode("one two three four", add_special_tokens=False)
    engine = Engine(ScriptedLM(script, len(prompt), len(tokenizer)), tokenizer)
    out = engine.generate([prompt], SamplingParams(max_tokens=50, stop=["two three"]))[0]
    assert out.text == "one " and out.finish_reason == "stop"
