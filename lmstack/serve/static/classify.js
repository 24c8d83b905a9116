// The classify box: shown when /v1/models lists a classifier; sends one text per line to
// /v1/classify and shows each label with its probability. Uses chat.js's $ and headers().
"use strict";

async function loadClassifiers() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) return;
  const { data } = await response.json();
  const names = data.filter((m) => (m.capabilities || []).includes("classify"));
  $("classifier").replaceChildren(...names.map((m) => new Option(m.id, m.id)));
  $("classify").hidden = names.length === 0;
  if (names.length && !data.some((m) => (m.capabilities || []).includes("chat"))) {
    $("classify").open = true;  // a classifier-only server: open the box at once
  }
}

function resultRow(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;  // textContent, never innerHTML: inputs are untrusted
    tr.appendChild(td);
  }
  return tr;
}

$("classify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const texts = $("classify-input").value.split("\n").map((t) => t.trim()).filter(Boolean);
  const table = $("classify-results");
  if (!texts.length) return;
  const response = await fetch("/v1/classify", {
    method: "POST", headers: headers(),
    body: JSON.stringify({ model: $("classifier").value, input: texts }),
  });
  if (!response.ok) {
    table.replaceChildren(resultRow([`error: ${await errorText(response)}`]));
    return;
  }
  const { data } = await response.json();
  table.replaceChildren(...data.map((r) => resultRow(
    [r.label, `${(100 * r.probabilities[r.label]).toFixed(1)}%`, texts[r.index]])));
});

loadClassifiers();
