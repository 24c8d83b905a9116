"""The knowledge-base app on real parts: a folder ingested into a real SQLite store and vector
index (MiniLM), re-ingested after edits, queried and answered over real HTTP on 127.0.0.1 with
the real SmolLM2 streaming, and paths outside the root refused."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from cli_helpers import run_lmstack

from lmstack.apps.kb import KnowledgeBase
from lmstack.apps.kb.server import kb_app
from lmstack.rag.loaders import OutsideRoot
from lmstack.rag.pipeline import cite
from lmstack.rag.retriever import Hit

FILES = {
    "guide/install.md": "# Install\n\nRun pip install lmstack to install the package.\n\n"
                        "# Serve\n\nThe serve command starts an HTTP server on port 8000.",
    "notes/tea.txt": "Green tea is steeped in water below boiling, near 80 degrees Celsius.",
    "faq.html": "<html><body><h1>FAQ</h1><p>The knowledge base stores chunks in SQLite.</p>"
                "</body></html>",
}


@pytest.fixture(scope="module")
def embedder(minilm_folder):
    from lmstack.embed.embedder import Embedder

    return Embedder.from_folder(minilm_folder)


def make_root(tmp_path):
    root = tmp_path / "docs"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_ingest_is_incremental_and_hits_map_back_to_the_files(tmp_path, embedder):
    root = make_root(tmp_path)
    kb = KnowledgeBase.create(tmp_path / "kb", root, size=80, overlap=0, embedder=embedder)
    first = kb.ingest()
    assert first["added"] == 3 and first["chunks"] >= 4
    assert kb.ingest()["unchanged"] == 3  # nothing changed: nothing re-embedded
    hit = kb.search("which port does the server listen on", 2)[0]
    assert hit.source == "guide/install.md" and "8000" in hit.text
    assert kb.document(hit.source)[hit.start:hit.end] == hit.text
    (root / "notes/tea.txt").write_text("Oolong is partly oxidised tea.", encoding="utf-8")
    (root / "faq.html").unlink()
    counts = kb.ingest()
    assert (counts["replaced"], counts["removed"]) == (1, 1)
    # Reopened from disk: the saved index and store agree with the files.
    again = KnowledgeBase(tmp_path / "kb", embedder=embedder)
    assert {h.source for h in again.search("oxidised tea sqlite", 5)} <= {
        "notes/tea.txt", "guide/install.md"}
    assert again.search("oxidised oolong", 1)[0].source == "notes/tea.txt"
    assert len(again._index()) == counts["chunks"]


def test_paths_outside_the_root_are_refused(tmp_path, embedder):
    root = make_root(tmp_path)
    (tmp_path / "secret.txt").write_text("password", encoding="utf-8")
    kb = KnowledgeBase.create(tmp_path / "kb", root, retriever="bm25")
    with pytest.raises(OutsideRoot):
        kb.ingest("../")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    with pytest.raises(OutsideRoot):
        kb.ingest()
    assert kb.sources() == []  # refused before anything was stored
    with pytest.raises(ValueError, match="other settings"):
        KnowledgeBase.create(tmp_path / "kb", root, retriever="dense")


def test_cli_ingest_and_its_errors(tmp_path):
    root = make_root(tmp_path)
    ok = run_lmstack("apps", "kb", "ingest", str(root), "--kb", str(tmp_path / "kb"),
                     "--retriever", "bm25")
    assert ok.returncode == 0, ok.stderr
    assert "added 3" in ok.stdout
    outside = run_lmstack("apps", "kb", "ingest", str(root), "--kb", str(tmp_path / "kb"),
                          "--retriever", "bm25", "--only", "../..")
    assert outside.returncode == 2 and "outside the root" in outside.stderr
    missing = run_lmstack("apps", "kb", "ask", "hi", "--kb", str(tmp_path / "nokb"))
    assert missing.returncode == 2 and "is not a knowledge base" in missing.stderr


def sse_events(response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return events


def test_served_over_http(tmp_path, embedder, smollm2):
    from lmstack.engine import Engine
    from lmstack.serve import BackgroundServer, ModelEntry

    model, tokenizer, _ = smollm2
    kb = KnowledgeBase.create(tmp_path / "kb", make_root(tmp_path), size=80, overlap=0,
                              embedder=embedder)
    kb.ingest()
    entry = ModelEntry("smollm2", tokenizer, engine=Engine(model, tokenizer, max_num_seqs=2))
    with BackgroundServer(kb_app(kb, {"smollm2": entry}, min_score=0.2)) as server, \
            httpx.Client(base_url=server.url, timeout=120) as client:
        found = client.post("/v1/retrieve", json={"query": "how do I install it", "k": 2})
        assert found.status_code == 200
        top = found.json()["data"][0]
        assert top["source"] == "guide/install.md"
        assert FILES["guide/install.md"][top["start"]:top["end"]] == top["text"]
        body = {"model": "smollm2", "question": "How do I install lmstack?", "stream": True,
                "max_tokens": 12}
        with client.stream("POST", "/v1/rag/answer", json=body) as streamed:
            assert streamed.status_code == 200
            events = sse_events(streamed)
        *deltas, final, done = events
        assert done == "[DONE]" and deltas and all("delta" in d for d in deltas)
        assert final["found"] and final["sources"][0]["source"] == "guide/install.md"
        hits = [Hit(**source) for source in final["sources"]]
        assert final == cite("".join(d["delta"] for d in deltas), hits).to_dict()
        far = client.post("/v1/rag/answer", json={**body, "question": "Who won the 1954 "
                                                  "football world cup?", "stream": False})
        assert far.status_code == 200 and not far.json()["found"]
        bad = client.post("/v1/retrieve", json={"query": "x", "k": 0})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "k"
        unknown = client.post("/v1/rag/answer", json={**body, "model": "gpt-9"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == \
            "model_not_found"
        assert client.get("/kb").status_code == 200
        assert client.get("/kb/static/kb.js").status_code == 200
        assert client.get("/kb/documents/faq.html").json()["text"].startswith("FAQ")
        escape = client.get("/kb/documents/..%2F..%2F..%2Fetc%2Fpasswd")
        assert escape.status_code == 404 and "error" in escape.json()


def test_a_server_without_a_knowledge_base_says_so(smollm2_server):
    r = httpx.post(smollm2_server.url + "/v1/retrieve", json={"query": "x"}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_retriever"
