// The draw box: shown when /v1/models lists an image model; sends the prompt to
// /v1/images/generations and shows the PNGs, enlarged to 256 pixels with crisp edges.
// Uses chat.js's $, headers() and errorText().
"use strict";

async function loadImageModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) return;
  const { data } = await response.json();
  const models = data.filter((m) => (m.capabilities || []).includes("images"));
  $("image-model").replaceChildren(...models.map((m) => new Option(m.id, m.id)));
  $("images").hidden = models.length === 0;
  if (models.length && !data.some((m) => (m.capabilities || []).includes("chat"))) {
    $("images").open = true;  // an image-only server: open the box at once
  }
}

$("images-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const prompt = $("images-prompt").value.trim();
  const out = $("images-results");
  if (!prompt) return;
  out.textContent = "drawing…";
  const response = await fetch("/v1/images/generations", {
    method: "POST", headers: headers(),
    body: JSON.stringify({ model: $("image-model").value, prompt,
                           n: Number($("images-n").value) || 1 }),
  });
  if (!response.ok) {
    out.textContent = `error: ${await errorText(response)}`;  // textContent: never innerHTML
    return;
  }
  const { data } = await response.json();
  out.replaceChildren(...data.map((d) => {
    const img = document.createElement("img");
    img.src = `data:image/png;base64,${d.b64_json}`;
    img.alt = prompt;
    img.width = img.height = 128;
    img.style.imageRendering = "pixelated";
    return img;
  }));
});

loadImageModels();
