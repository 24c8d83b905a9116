// The image box: shown when /v1/models lists a captioner; sends the chosen picture (base64)
// and an optional question to /v1/images/captions. Uses chat.js's $, headers() and errorText().
"use strict";

async function loadCaptioners() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) return;
  const { data } = await response.json();
  const names = data.filter((m) => (m.capabilities || []).includes("caption"));
  $("captioner").replaceChildren(...names.map((m) => new Option(m.id, m.id)));
  $("caption").hidden = names.length === 0;
  if (names.length && !data.some((m) => (m.capabilities || []).includes("chat"))) {
    $("caption").open = true;  // a captioner-only server: open the box at once
  }
}

function fileAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);  // a data: URL, which the server accepts
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

$("caption-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("caption-file").files[0];
  const out = $("caption-result");
  if (!file) { out.textContent = "choose an image first"; return; }
  const question = $("caption-question").value.trim();
  const body = { model: $("captioner").value, image: await fileAsBase64(file),
                 language: $("caption-language").value };
  if (question) body.question = question;
  const response = await fetch("/v1/images/captions",
    { method: "POST", headers: headers(), body: JSON.stringify(body) });
  out.textContent = response.ok ? (await response.json()).text  // textContent: untrusted
    : `error: ${await errorText(response)}`;
});

loadCaptioners();
