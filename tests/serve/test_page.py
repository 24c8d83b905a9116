"""The web chat page in headless Chromium: type, click Send, watch streamed text and the
tokens/s line appear."""

from __future__ import annotations

import re

from lmstack.serve import BackgroundServer, create_app, load_entry


def ask_greedily(browser, url: str, prompt: str, max_tokens: int, timeout_ms: int):
    """Open the page, send `prompt` at temperature 0, wait for the reply to finish streaming;
    returns the page, the JavaScript errors it raised and the served model names it listed."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    # The model list comes from /v1/models; only generators can chat.
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    models = page.locator("#model option").all_inner_texts()
    page.click("#settings summary")
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", "0")
    page.fill("#prompt", prompt)
    page.click("#send")
    page.locator(".msg.user").wait_for()
    # Finished when the cursor class is gone and the stats line reports the final rate.
    page.wait_for_function("!document.querySelector('.msg.assistant.streaming') && "
                           "/tokens\\/s/.test(document.querySelector('#stats').textContent) && "
                           "!/streaming/.test(document.querySelector('#stats').textContent)",
                           timeout=timeout_ms)
    return page, errors, models


def test_page_streams_a_reply(browser, live, client):
    page, errors, models = ask_greedily(browser, live.url, "The quick brown fox", 24, 30_000)
    assert models == ["tiny"]
    reply = page.locator(".msg.assistant")
    # What the page assembled from the stream is what the API answers in one piece.
    expected = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "The quick brown fox"}],
        max_tokens=24, temperature=0).choices[0].message.content
    assert expected and reply.text_content() == expected
    assert page.locator(".msg.user").inner_text() == "The quick brown fox"
    assert re.match(r"\d+ tokens · [\d.]+ tokens/s · first token \d+ ms$",
                    page.locator("#stats").inner_text())
    assert not page.locator(".msg.error").count() and not errors
    page.close()


def test_page_shows_server_errors(browser, live):
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    page.click("#settings summary")
    page.fill("#max-tokens", "100000")  # more than the context: the server says 400
    page.fill("#prompt", "hello")
    page.click("#send")
    page.locator(".msg.error").wait_for(timeout=15_000)
    assert "max_tokens" in page.locator(".msg.error").inner_text()
    page.close()


def test_page_defaults_fit_a_short_context(browser, lm_folder):
    """A model whose whole context is shorter than a fixed default reply: the page sizes its
    request from /v1/models' max_model_len and the prompt, so a message at the page's
    defaults streams a reply instead of a context-length error."""
    entry = load_entry(lm_folder, "short", max_num_seqs=2, max_model_len=64)
    with BackgroundServer(create_app({"short": entry})) as server:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelector('#model').options.length > 0")
        page.fill("#prompt", "The quick brown fox")
        page.click("#send")
        page.wait_for_function("!document.querySelector('.msg.assistant.streaming') && "
                               "!/streaming|waiting/.test(document.querySelector('#stats')"
                               ".textContent) || document.querySelector('.msg.error')",
                               timeout=30_000)
        assert not page.locator(".msg.error").count(), page.locator(".msg.error").inner_text()
        assert page.locator(".msg.assistant").text_content()
        assert re.match(r"\d+ tokens · ", page.locator("#stats").inner_text())
        assert not errors
        page.close()


def test_page_chats_with_smollm2(browser, smollm2_server):
    """The real model behind the page: a question answered, streamed into the page, the turn
    ended by `<|im_end|>`, which the page never shows."""
    page, errors, models = ask_greedily(browser, smollm2_server.url,
                                        "What is the capital of France?", 16, 60_000)
    assert models == ["smollm2"]
    reply = page.locator(".msg.assistant").text_content()
    assert "Paris" in reply and "<|" not in reply
    tokens = int(re.match(r"(\d+) tokens · ", page.locator("#stats").inner_text())[1])
    assert tokens < 16  # it stopped at the end of its turn, not at the limit
    assert not page.locator(".msg.error").count() and not errors
    page.close()
