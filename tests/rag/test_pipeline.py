"""The RAG pipeline with a scripted model: citations map back to retrieved spans, citations of
sources the prompt never had are dropped and counted, a weak retrieval answers "not in the
documents" without asking the model, and streaming ends with the same Answer."""

from __future__ import annotations

from rag_helpers import DOCS, ScriptedChat, bm25

from lmstack.chat.protocol import ChatModel
from lmstack.rag.pipeline import NOT_FOUND, Answer, RagPipeline
from lmstack.rag.prompt import cited_numbers, drop_markers
from lmstack.rag.retriever import Retriever


def test_citations_point_at_retrieved_spans_and_invented_ones_are_dropped():
    model = ScriptedChat("It returns the number of items [1]. Also see [2, 9] and [7].")
    assert isinstance(model, ChatModel) and isinstance(bm25(), Retriever)
    pipe = RagPipeline(bm25(), model, k=2)
    answer = pipe.answer("What does the len() function return in Python?")
    assert len(answer.hits) == 2
    assert [c.number for c in answer.citations] == [1, 2]
    assert answer.dropped == 2  # [9] and [7]: the prompt had two sources
    assert answer.text == "It returns the number of items [1]. Also see [2] and."
    first = answer.citations[0]
    assert first.source == "python.md" and "len()" in first.text
    assert DOCS[first.source][first.start:first.end] == first.text
    # The prompt numbered exactly the hits that the citations name.
    prompt = model.prompts[0][1]["content"]
    assert f"[1] ({answer.hits[0].source})\n{answer.hits[0].text}" in prompt
    assert "[3]" not in prompt


def test_below_the_threshold_the_model_is_not_asked():
    model = ScriptedChat("made up [1]")
    pipe = RagPipeline(bm25(), model, min_score=1e9)
    answer = pipe.answer("What does the len() function return?")
    assert answer.text == NOT_FOUND and not answer.found and answer.citations == []
    assert model.prompts == []
    # Nothing retrieved at all (no shared term) is the same answer, threshold or not.
    assert not RagPipeline(bm25(), model).answer("zebra xylophone").found
    # And a threshold the best hit clears lets the model answer.
    assert RagPipeline(bm25(), model, min_score=0.1).answer("len function").found


def test_streaming_ends_with_the_same_answer_as_answer():
    reply = "Indentation groups statements [1]; see [4]."
    pipe = RagPipeline(bm25(), ScriptedChat(reply), k=3)
    items = list(pipe.stream("How does Python group statements?"))
    *deltas, final = items
    assert isinstance(final, Answer) and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == reply  # the raw reply, as generated
    assert final == pipe.answer("How does Python group statements?")
    assert final.dropped == 1 and final.text == "Indentation groups statements [1]; see."
    *deltas, final = RagPipeline(bm25(), ScriptedChat(reply)).stream("zebra")
    assert deltas == [NOT_FOUND] and not final.found


def test_marker_reading():
    assert cited_numbers("a [2] b [1,3] c [2] [x] [10]") == [2, 1, 3, 10]
    assert drop_markers("a [1, 5] b [5].", {1}) == "a [1] b."
