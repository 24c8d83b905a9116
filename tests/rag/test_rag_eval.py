"""The judged sets parse as their readmes say, and `lmstack rag eval` scores a slice of
Cranfield through the real command, printing what the library computes."""

from __future__ import annotations

import re
import shutil

import pytest
from cli_helpers import run_lmstack

from lmstack.demo.corpus import find_shared_data
from lmstack.rag.eval_sets import load_cmrc, load_cranfield
from lmstack.rag.evaluate import build_retrievers, pydoc_set, retrieval_metrics

SHARED = find_shared_data()
needs_shared = pytest.mark.skipif(SHARED is None, reason="needs ../shared/data")


@pytest.fixture(scope="module")
def cranfield_slice(tmp_path_factory):
    """Documents 1..300 of Cranfield, and the queries all of whose relevant documents are
    among them: a small collection with the real text and judgments."""
    src, out = SHARED / "retrieval" / "cranfield", tmp_path_factory.mktemp("cran")
    text = (src / "cran.all.1400").read_text(encoding="utf-8", errors="replace")
    (out / "cran.all.1400").write_text(text[:text.index("\n.I 301\n") + 1], encoding="utf-8")
    shutil.copy(src / "cran.qry", out / "cran.qry")
    rows = [line.split() for line in (src / "cranqrel").read_text().splitlines() if line.split()]
    outside = {q for q, d, g in rows if int(d) > 300 and int(g) > 0}
    (out / "cranqrel").write_text("".join(f"{q} {d} {g}\n" for q, d, g in rows
                                          if q not in outside and int(d) <= 300),
                                  encoding="utf-8")
    return out


@needs_shared
def test_cranfield_and_cmrc_parse_as_documented():
    cran = load_cranfield(SHARED / "retrieval" / "cranfield")
    assert (len(cran.documents), len(cran.queries)) == (1400, 225)
    # cranqrel numbers queries by position: its query 3 is cran.qry's ".I 004".
    assert cran.queries["3"].startswith("what problems of heat conduction in composite slabs")
    assert cran.qrels["1"]["184"] == 3.0  # grade 2 ("high degree of relevance") -> gain 3
    assert all(g in (0.0, 1.0, 2.0, 3.0, 4.0) for q in cran.qrels.values() for g in q.values())
    cmrc = load_cmrc(SHARED / "retrieval" / "cmrc2018_trial.json")
    assert len(cmrc.documents) == 256 and len(cmrc.queries) > 900
    q = next(iter(cmrc.queries))
    (paragraph,) = cmrc.qrels[q]
    assert cmrc.answers[q][0] in cmrc.documents[paragraph]


def test_pydoc_answers_are_verbatim_in_their_topics():
    judged = pydoc_set()
    assert 40 <= len(judged.queries) <= 60
    for q in judged.queries:
        (topic,) = judged.qrels[q]
        assert judged.answers[q][0] in judged.documents[topic], q


@needs_shared
def test_rag_eval_command_on_a_cranfield_slice(cranfield_slice):
    judged = load_cranfield(cranfield_slice).head(8)
    assert len(judged.queries) == 8
    expected = retrieval_metrics(build_retrievers(judged.documents, ["bm25"])["bm25"], judged)
    result = run_lmstack("rag", "eval", "--data", str(cranfield_slice), "--limit", "8",
                         "--retrievers", "bm25")
    assert result.returncode == 0, result.stderr
    row = re.search(r"bm25\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│"
                    r"\s*([\d.]+)", result.stdout)
    assert row, result.stdout
    assert float(row.group(5)) == pytest.approx(expected["ndcg@10"], abs=5e-4)
    assert float(row.group(4)) == pytest.approx(expected["mrr"], abs=5e-4)
    assert expected["ndcg@10"] > 0.2  # BM25 finds the judged abstracts, far above chance


def test_rag_eval_refuses_bad_options_in_one_line(tmp_path):
    bad = run_lmstack("rag", "eval", "--dataset", "msmarco")
    assert bad.returncode == 2 and "--dataset must be one of cranfield, cmrc" in bad.stderr
    missing = run_lmstack("rag", "eval", "--data", str(tmp_path), "--retrievers", "bm25")
    assert missing.returncode == 2 and "cran.all.1400 is missing" in missing.stderr
    assert "Traceback" not in missing.stderr
