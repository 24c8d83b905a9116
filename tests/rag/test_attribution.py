"""Post-hoc attribution: a reply that cites nothing gets the sources holding its words,
marked "attributed"; the model's own citations always win; words every source shares decide
nothing; and the answer_line layout's format is read back."""

from __future__ import annotations

from rag_helpers import DOCS, ScriptedChat, bm25

from lmstack.rag.attribution import attribute, supporting_source
from lmstack.rag.pipeline import RagPipeline, cite
from lmstack.rag.prompt import ANSWER_LINE_FORMAT
from lmstack.rag.retriever import Hit


def hits(*texts: str) -> list[Hit]:
    return [Hit(i, t, f"d{i}", 0, len(t), 1.0) for i, t in enumerate(texts)]


def test_each_sentence_goes_to_the_source_holding_its_words():
    sources = hits("Rust checks ownership at compile time.",
                   "The len() function returns the number of items.",
                   "Green tea is steeped below boiling.")
    reply = "It returns the number of items. Tea is steeped below boiling."
    assert attribute(reply, sources) == [2, 3]
    assert attribute("Bananas are yellow.", sources) == []      # no source holds these words
    assert attribute("", sources) == [] and attribute("anything", []) == []


def test_words_in_every_source_do_not_decide():
    sets = [{"the", "is", "tea"}, {"the", "is", "coffee"}]
    # "the is" alone: nothing distinctive left, no source is credited.
    assert supporting_source("The is.", sets) is None
    assert supporting_source("The tea is.", sets) == 0
    # At least half the distinctive words must be in the source (here 1 of 3).
    assert supporting_source("tea from kenya highlands", sets) is None
    assert supporting_source("tea from kenya highlands", sets, min_support=0.25) == 0


def test_the_model_citations_win_and_attributed_ones_are_marked():
    found = bm25().search("What does the len() function return?", 3)
    own = cite("The number of items [1].", found)
    assert [c.kind for c in own.citations] == ["model"]
    silent = cite("Answer: the number of items in a container", found)
    assert silent.text == "the number of items in a container"  # the format's prefix goes
    (c,) = silent.citations
    assert c.kind == "attributed" and "len()" in c.text
    assert DOCS[c.source][c.start:c.end] == c.text
    assert silent.to_dict()["citations"][0]["kind"] == "attributed"
    assert cite("the number of items in a container", found, False).citations == []
    # An invented number is still dropped and counted; attribution fills in after it.
    invented = cite("the number of items in a container [9]", found)
    assert invented.dropped == 1 and [c.kind for c in invented.citations] == ["attributed"]


def test_answer_line_layout_ends_with_the_format():
    model = ScriptedChat("Answer: the number of items in a container [1]")
    answer = RagPipeline(bm25(), model, k=2, layout="answer_line").answer("What does len() do?")
    prompt = model.prompts[0][-1]["content"]
    assert prompt.endswith(ANSWER_LINE_FORMAT) and "[1] (python.md)" in prompt
    assert answer.text == "the number of items in a container [1]"
    assert [c.kind for c in answer.citations] == ["model"]
    sources_first = ScriptedChat("x")
    RagPipeline(bm25(), sources_first, layout="sources_first").answer("What does len() do?")
    assert sources_first.prompts[0][-1]["content"].endswith("Question: What does len() do?")
