// mreg web page: copy buttons and the try-it form. No build step, no dependencies.
"use strict";

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    // Older browsers, or a page that is not a secure context: a selected textarea and execCommand.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function setupCopy(button) {
  button.addEventListener("click", async () => {
    const source = button.dataset.copy ? document.getElementById(button.dataset.copy) : null;
    const text = source ? source.value : button.dataset.copyText;
    const done = await copyText(text);
    const label = button.textContent;
    button.textContent = done ? "Copied" : "Copy failed";
    button.classList.toggle("copied", done);
    button.dataset.copied = done ? text : "";
    setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 2000);
  });
}

function describe(outputs) {
  return outputs.map((o) => {
    if (o && typeof o === "object" && "label" in o) {
      const confidence = typeof o.confidence === "number" ? ` (${(o.confidence * 100).toFixed(1)}%)` : "";
      return `${o.label}${confidence}`;
    }
    return JSON.stringify(o);
  }).join(", ");
}

function setupTry(form) {
  const result = document.getElementById("try-result");
  const prediction = document.getElementById("try-prediction");
  const response = document.getElementById("try-response");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const headers = { "Content-Type": "application/json" };
    const token = form.elements.token.value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    result.hidden = false;
    result.classList.remove("error");
    prediction.textContent = "…";
    let body;
    try {
      body = JSON.parse(form.elements.body.value);
    } catch (err) {
      result.classList.add("error");
      prediction.textContent = `not JSON: ${err.message}`;
      response.textContent = "";
      return;
    }
    try {
      // The model page's form names a pointer (a weighted one picks an arm per call).
      const pointer = form.elements.pointer;
      const url = pointer ? `${form.dataset.url}?pointer=${encodeURIComponent(pointer.value)}` : form.dataset.url;
      const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
      const answer = await r.json();
      response.textContent = JSON.stringify(answer, null, 2);
      if (r.ok) {
        prediction.textContent = describe(answer.outputs || []);
      } else {
        result.classList.add("error");
        prediction.textContent = `${r.status}: ${answer.error ? answer.error.message : r.statusText}`;
      }
    } catch (err) {
      result.classList.add("error");
      prediction.textContent = `request failed: ${err.message}`;
    }
    result.dataset.done = "1";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy").forEach(setupCopy);
  const form = document.getElementById("try-form");
  if (form) setupTry(form);
});
