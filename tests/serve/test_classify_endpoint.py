"""POST /v1/classify over real HTTP on 127.0.0.1: a batch of texts in, labels and
probabilities out (the same as the classifier in-process), bad input out as OpenAI-shaped 4xx."""

from __future__ import annotations

import httpx
import pytest

from lmstack.serve import BackgroundServer, create_app

TEXTS = ["房间很干净，服务也好", "太吵了，不会再来", "a lovely, moving film"]


@pytest.fixture(scope="module")
def server(tiny_sentiment_classifier):
    app = create_app({}, classifiers={"sentiment": tiny_sentiment_classifier})
    with BackgroundServer(app) as running:
        yield running


def test_batch_of_texts_gets_labels_and_probabilities(server, tiny_sentiment_classifier):
    r = httpx.post(f"{server.url}/v1/classify", json={"model": "sentiment", "input": TEXTS},
                   timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "sentiment"
    expected = tiny_sentiment_classifier.classify(TEXTS)
    for i, (got, want) in enumerate(zip(body["data"], expected, strict=True)):
        assert got["index"] == i and got["label"] == want["label"]
        assert set(got["probabilities"]) == {"negative", "positive"}
        assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        for label, p in want["probabilities"].items():
            assert got["probabilities"][label] == pytest.approx(p, abs=1e-6)
    one = httpx.post(f"{server.url}/v1/classify", json={"input": TEXTS[0]}, timeout=60)
    assert one.status_code == 200 and len(one.json()["data"]) == 1  # model may be left out


@pytest.mark.parametrize("body, status, param", [
    ({"input": []}, 400, "input"),
    ({"input": ["fine", "   "]}, 400, "input"),
    ({"input": 42}, 400, "input"),
    ({"input": ["x"] * 257}, 400, "input"),
    ({"model": "nope", "input": "fine"}, 404, "model"),
    ({}, 400, "input"),
])
def test_bad_input_is_an_openai_shaped_4xx(server, body, status, param):
    r = httpx.post(f"{server.url}/v1/classify", json=body, timeout=60)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_models_and_page_offer_the_classifier(server):
    cards = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    assert [c["id"] for c in cards if "classify" in c["capabilities"]] == ["sentiment"]
    page = httpx.get(f"{server.url}/", timeout=10).text
    assert 'id="classify"' in page and "/static/classify.js" in page
    script = httpx.get(f"{server.url}/static/classify.js", timeout=10)
    assert script.status_code == 200 and "/v1/classify" in script.text


def test_without_a_classifier_the_route_is_absent(live):
    """The shared generate/embed server mounts no /v1/classify: 404, OpenAI-shaped."""
    r = httpx.post(f"{live.url}/v1/classify", json={"input": "fine"}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    with pytest.raises(ValueError, match="at least one model or classifier"):
        create_app({})
