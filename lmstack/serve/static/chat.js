// The lmstack chat page: streams /v1/chat/completions over fetch + server-sent events and
// reports time to first token and tokens/s. Plain JS, no build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];          // the conversation sent with every request
let controller = null;       // aborts the in-flight stream (the Stop button)
const contextOf = {};        // model id -> max_model_len, from /v1/models
const DEFAULT_REPLY = 512;   // longest reply the page asks for unless the user sets one

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function bubble(kind, text) {
  const div = document.createElement("div");
  div.className = `msg ${kind}`;
  div.textContent = text;   // textContent, never innerHTML: model output is untrusted
  $("messages").appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : JSON.stringify(body);
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function loadModels() {
  const select = $("model");
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) {
    bubble("error", `Could not list models: ${await errorText(response)}`);
    return;
  }
  const { data } = await response.json();
  select.replaceChildren();
  for (const m of data.filter((m) => (m.capabilities || ["chat"]).includes("chat"))) {
    select.appendChild(new Option(m.id, m.id));
    if (m.max_model_len) contextOf[m.id] = m.max_model_len;
  }
  const saved = localStorage.getItem("lmstack.model");
  if (saved && [...select.options].some((o) => o.value === saved)) select.value = saved;
}

// Server-sent events arrive in arbitrary slices: keep the unfinished tail of the buffer and
// hand back every complete "data: ..." payload.
function takeEvents(state, chunk) {
  state.buffer += chunk;
  const events = state.buffer.split(/\r?\n\r?\n/);
  state.buffer = events.pop();
  return events.flatMap((event) => event.split(/\r?\n/)
    .filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()));
}

function showStats(tokens, started, firstAt, done) {
  if (firstAt === null) { $("stats").textContent = "waiting for the first token…"; return; }
  const now = performance.now();
  const seconds = Math.max((now - firstAt) / 1000, 1e-3);
  const rate = tokens > 1 ? (tokens - 1) / seconds : 0;   // intervals between tokens
  $("stats").textContent = `${tokens} tokens · ${rate.toFixed(1)} tokens/s · first token ` +
    `${Math.round(firstAt - started)} ms${done ? "" : " · streaming"}`;
}

// The reply's budget when the user set none: what the context leaves after the prompt, at
// most DEFAULT_REPLY (as `lmstack chat` does). The page cannot tokenize, so it bounds the
// prompt from above: a byte-level BPE never makes more tokens than bytes, and the chat
// template adds a few per message. Without a known context, the server fills what is left.
function autoMaxTokens(messages) {
  const limit = contextOf[$("model").value];
  if (!limit) return undefined;
  const encoder = new TextEncoder();
  const prompt = messages.reduce((n, m) => n + encoder.encode(m.content).length + 16, 16);
  const room = limit - prompt;
  return room >= 1 ? Math.min(DEFAULT_REPLY, room) : undefined;
}

async function send(text) {
  history.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant streaming", "");
  const system = $("system").value.trim();
  const messages = system ? [{ role: "system", content: system }, ...history] : history;
  const chosen = $("max-tokens").value.trim();
  const body = {
    model: $("model").value,
    messages,
    temperature: Number($("temperature").value),
    max_tokens: chosen ? Number(chosen) : autoMaxTokens(messages),
    stream: true,
    stream_options: { include_usage: true },
  };
  controller = new AbortController();
  $("send").hidden = true; $("stop").hidden = false;
  const started = performance.now();
  let firstAt = null, tokens = 0, content = "", failed = false;
  showStats(0, started, null, false);
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const state = { buffer: "" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const data of takeEvents(state, value)) {
        if (data === "[DONE]") continue;
        const event = JSON.parse(data);
        if (event.error) throw new Error(event.error.message);
        if (event.usage) tokens = event.usage.completion_tokens;
        const delta = event.choices.length ? event.choices[0].delta.content : "";
        if (delta) {
          if (firstAt === null) firstAt = performance.now();
          content += delta;
          reply.textContent = content;
          tokens += 1;   // about one token per chunk; the usage chunk corrects it at the end
          reply.scrollIntoView({ block: "end" });
        }
        showStats(tokens, started, firstAt, false);
      }
    }
    showStats(tokens, started, firstAt, true);
  } catch (err) {
    if (err.name !== "AbortError") {
      failed = true;
      bubble("error", String(err.message || err));
    }
  } finally {
    reply.classList.remove("streaming");
    if (failed && !content) {
      // Nothing came back: drop the turn so the next message is not sent after it.
      reply.remove();
      history.pop();
      $("stats").textContent = "";
    } else {
      history.push({ role: "assistant", content });
    }
    controller = null;
    $("send").hidden = false; $("stop").hidden = true;
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("clear").addEventListener("click", () => {
  history.length = 0;
  $("messages").replaceChildren();
  $("stats").textContent = "";
});
$("model").addEventListener("change", () => localStorage.setItem("lmstack.model", $("model").value));
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("lmstack.key", $("api-key").value);
  loadModels();
});
$("api-key").value = sessionStorage.getItem("lmstack.key") || "";
loadModels();
