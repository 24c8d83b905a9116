"""The ChatModel seam on the real SmolLM2: in-process (EngineChatModel) and over HTTP
(OpenAIChatModel against lmstack's server) give the same greedy answer, ending the turn at
`<|im_end|>` without showing it."""

from __future__ import annotations

from lmstack.chat import ChatModel, OpenAIChatModel

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0, "max_tokens": 16}


def test_both_chat_models_answer_alike(smollm2, smollm2_server):
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel

    model, tokenizer, _ = smollm2
    local = EngineChatModel(Engine(model, tokenizer, max_num_seqs=1), name="smollm2")
    remote = OpenAIChatModel(smollm2_server.url + "/v1", api_key="-", model="smollm2")
    answers = []
    for chat_model in (local, remote):
        assert isinstance(chat_model, ChatModel)
        result = chat_model.chat(QUESTION, **GREEDY)
        assert result.finish_reason == "stop" and result.usage.completion_tokens < 16
        assert "Paris" in result.content and "<|im_end|>" not in result.content
        assert "".join(chat_model.stream(QUESTION, **GREEDY)) == result.content
        answers.append(result.content)
    assert answers[0] == answers[1]
