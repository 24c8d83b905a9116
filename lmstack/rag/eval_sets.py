"""Judged retrieval sets as (documents, queries, qrels): Cranfield and CMRC 2018.

- Cranfield (Cleverdon, 1967): 1,400 aerodynamics abstracts, 225 queries. cranqrel numbers the
  queries 1..225 in file order (cran.qry's own .I numbers skip), and grades relevance 1 (a
  complete answer) to 4 (minimum interest), -1 meaning judged not relevant; as gains we use
  5 - grade (1 -> 4 ... 4 -> 1) and 0 for -1.
- CMRC 2018 (Cui et al., 2019), SQuAD-format Chinese reading comprehension: each paragraph is a
  document, each question a query whose one relevant document is its own paragraph.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JudgedSet:
    """documents: id -> text; queries: id -> text; qrels: query id -> {document id: gain};
    answers: query id -> gold answer strings (where the set has them)."""

    name: str
    documents: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]
    answers: dict[str, list[str]] = field(default_factory=dict)

    def head(self, n: int) -> JudgedSet:
        """The first n judged queries (all documents kept: the corpus stays the whole one)."""
        keep = [q for q in self.queries if self.qrels.get(q)][:n]
        return JudgedSet(self.name, self.documents, {q: self.queries[q] for q in keep},
                         {q: self.qrels[q] for q in keep},
                         {q: self.answers[q] for q in keep if q in self.answers})


def _records(text: str) -> list[dict[str, str]]:
    """SMART-format records (`.I id`, then `.T`, `.W`, ... fields) as dicts."""
    records = []
    for block in re.split(r"^\.I\s+", text, flags=re.MULTILINE)[1:]:
        head, _, body = block.partition("\n")
        fields = {"id": head.strip()}
        for m in re.finditer(r"^\.([A-Z])\s*\n(.*?)(?=^\.[A-Z]\s*$|\Z)", body, re.MULTILINE | re.DOTALL):
            fields[m.group(1)] = " ".join(m.group(2).split())
        records.append(fields)
    return records


def load_cranfield(folder: str | Path) -> JudgedSet:
    folder = Path(folder)
    for name in ("cran.all.1400", "cran.qry", "cranqrel"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing; point --data at the "
                                    "cranfield folder (../shared/data/retrieval/cranfield)")
    docs = {r["id"]: r.get("W", "") for r in _records(
        (folder / "cran.all.1400").read_text(encoding="utf-8", errors="replace"))}
    queries = {str(n): r.get("W", "") for n, r in enumerate(
        _records((folder / "cran.qry").read_text(encoding="utf-8")), start=1)}
    qrels: dict[str, dict[str, float]] = {}
    for line in (folder / "cranqrel").read_text(encoding="utf-8").splitlines():
        if line.split():
            query, doc, grade = line.split()[:3]
            qrels.setdefault(query, {})[doc] = 5.0 - int(grade) if int(grade) > 0 else 0.0
    return JudgedSet("cranfield", docs, queries, qrels)


def load_cmrc(path: str | Path) -> JudgedSet:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; point --data at cmrc2018_trial.json "
                                "(../shared/data/retrieval/)")
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    docs, queries, qrels, answers = {}, {}, {}, {}
    for article in data:
        for paragraph in article["paragraphs"]:
            docs[paragraph["id"]] = paragraph["context"]
            for qa in paragraph["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {paragraph["id"]: 1.0}
                answers[qa["id"]] = [a["text"] for a in qa["answers"]]
    return JudgedSet("cmrc2018", docs, queries, qrels, answers)
