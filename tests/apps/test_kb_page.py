"""The knowledge-base page in headless Chromium: ask, watch the answer stream in, see the
sources listed, click one and find its span highlighted in the document."""

from __future__ import annotations

import httpx

from lmstack.apps.kb import KnowledgeBase
from lmstack.apps.kb.server import kb_app


def test_kb_page_streams_an_answer_with_clickable_sources(browser, tmp_path, smollm2):
    from lmstack.engine import Engine
    from lmstack.serve import BackgroundServer, ModelEntry

    root = tmp_path / "docs"
    root.mkdir()
    # Three documents at least: with two, a term in one of them has BM25 idf log(1.5/1.5) = 0.
    (root / "install.md").write_text("# Install\n\nRun pip install lmstack to install it.\n\n"
                                     "# Tea\n\nGreen tea steeps below boiling.", encoding="utf-8")
    (root / "serve.md").write_text("The serve command starts a server on port 8000.",
                                   encoding="utf-8")
    (root / "store.md").write_text("Chunks are stored in SQLite.", encoding="utf-8")
    kb = KnowledgeBase.create(tmp_path / "kb", root, size=60, overlap=0, retriever="bm25")
    kb.ingest()
    model, tokenizer, _ = smollm2
    entry = ModelEntry("smollm2", tokenizer, engine=Engine(model, tokenizer, max_num_seqs=1))
    with BackgroundServer(kb_app(kb, {"smollm2": entry})) as server:
        expected = httpx.post(server.url + "/v1/retrieve",
                              json={"query": "How do I install lmstack?", "k": 4}).json()["data"]
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/kb")
        page.wait_for_function("document.querySelector('#model').options.length > 0")
        page.fill("#max-tokens", "8")
        page.fill("#question", "How do I install lmstack?")
        page.click("#ask button")
        page.locator("#sources li").first.wait_for(timeout=300_000)  # a loaded CI
        assert page.locator("#answer").inner_text().strip()
        items = page.locator("#sources li").all_inner_texts()
        assert [i.lstrip("★☆ ").split(" ")[0] for i in items] == [h["source"] for h in expected]
        page.locator("#sources li").first.click()
        page.locator("#document mark").wait_for()
        assert page.locator("#document mark").inner_text() == expected[0]["text"]
        assert not errors
        page.close()
