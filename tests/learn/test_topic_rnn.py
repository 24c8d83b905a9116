"""`lmstack learn rnn` at tiny scale: four models of about equal size train, the loss falls,
and the gradient probe shows the vanilla RNN forgetting fastest."""

from __future__ import annotations

from lmstack.learn.registry import find_topic
from lmstack.learn.topic_rnn import KINDS


def test_tiny_run_writes_a_report(tmp_path):
    results = find_topic("rnn").run(tmp_path, True)
    sizes = [results[k]["parameters"] for k in KINDS]
    assert max(sizes) < 1.5 * min(sizes)  # comparable parameter counts
    for kind in KINDS:
        assert results[kind]["val_loss"] < results[kind]["val_loss_start"] - 0.2
        assert results[kind]["tok_per_s"] > 0
    # Through tanh steps alone the far gradient vanishes; the gated cells keep more of it.
    reach = {k: results[k]["grad_far_over_near"] for k in KINDS}
    assert reach["rnn"] < reach["lstm"] and reach["rnn"] < reach["gru"]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"| {k} |" in report for k in KINDS)
    assert (tmp_path / "grad_norm_by_step.png").is_file()


def test_fresh_clone_falls_back_to_a_corpus_python_ships(tmp_path, monkeypatch):
    from lmstack.learn import topic_rnn

    monkeypatch.setattr(topic_rnn, "SHAKESPEARE", tmp_path / "missing.txt")
    text, source = topic_rnn.load_corpus(50_000)
    assert source.startswith("pydoc_data.topics") and len(text) == 50_000
