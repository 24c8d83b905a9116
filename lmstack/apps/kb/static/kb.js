// The knowledge-base page: stream an answer from /v1/rag/answer (server-sent events: deltas,
// then the answer with its citations), list the sources, show a clicked source's span in
// its document. Text is only ever set with textContent, never parsed as HTML.
const $ = (id) => document.getElementById(id);

function headers() {
  const key = $("api-key").value.trim();
  return {"Content-Type": "application/json", ...(key ? {Authorization: `Bearer ${key}`} : {})};
}

async function loadModels() {
  const r = await fetch("/v1/models", {headers: headers()});
  if (!r.ok) return;
  for (const m of (await r.json()).data.filter((m) => m.capabilities.includes("chat"))) {
    $("model").append(new Option(m.id, m.id));
  }
}

async function showSource(src) {
  const r = await fetch(`/kb/documents/${src.source.split("/").map(encodeURIComponent).join("/")}`);
  if (!r.ok) return;
  const {text} = await r.json();
  const box = $("document");
  box.replaceChildren(text.slice(0, src.start), Object.assign(document.createElement("mark"),
    {textContent: text.slice(src.start, src.end)}), text.slice(src.end));
  box.hidden = false;
  box.querySelector("mark").scrollIntoView({block: "center"});
}

function showSources(answer) {
  // ★ the model cited it; ☆ lmstack attributed the answer to it (the model cited nothing)
  const cited = new Map(answer.citations.map((c) => [c.number, c.kind]));
  $("sources").replaceChildren(...answer.sources.map((src, i) => {
    const li = document.createElement("li");
    const mark = {model: "★ ", attributed: "☆ "}[cited.get(i + 1)] ?? "";
    li.textContent = `${mark}${src.source} ` +
      `[${src.start}–${src.end}] (score ${src.score.toFixed(3)})`;
    li.onclick = () => showSource(src);
    return li;
  }));
}

$("ask").onsubmit = async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("answer").textContent = "";
  $("sources").replaceChildren();
  $("document").hidden = true;
  const r = await fetch("/v1/rag/answer", {method: "POST", headers: headers(),
    body: JSON.stringify({model: $("model").value, question, stream: true,
                          max_tokens: Number($("max-tokens").value)})});
  if (!r.ok) {
    $("answer").textContent = (await r.json()).error?.message ?? `error ${r.status}`;
    return;
  }
  const reader = r.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    const frames = buffer.split("\n\n");
    buffer = frames.pop();
    for (const frame of frames) {
      const data = frame.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const event = JSON.parse(data);
      if (event.delta !== undefined) $("answer").textContent += event.delta;
      else if (event.error) $("answer").textContent += ` [error: ${event.error.message}]`;
      else { $("answer").textContent = event.answer; showSources(event); }
    }
  }
};

loadModels();
