// The model menu (from GET /v1/models: the server's model catalog) and the API key, kept in this browser only.

import { authHeaders, el, keyMessage, revealKey, showError } from "./dom.js";

const KEY_STORE = "stt.apiKey";

export async function loadModels() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 10000);
  try {
    const res = await fetch("/v1/models", { headers: authHeaders(), signal: ctrl.signal });
    if (res.status === 401) {
      revealKey(keyMessage());
      return;
    }
    if (!res.ok) return;
    const body = await res.json();
    const models = (body.data || []).filter((m) => m && m.id && !m.alias_of); // aliases of MODEL are no choice
    const keep = el.model.value;
    const fallback = models.find((m) => m.default);
    const options = models.map((m) => new Option(m.default ? `${m.id} (default)` : m.id, m.id));
    if (!fallback) options.unshift(new Option("Server default", ""));
    el.model.replaceChildren(...options);
    if (models.some((m) => m.id === keep)) el.model.value = keep;
    else if (fallback) el.model.value = fallback.id;
    if (el.error.textContent.includes("API key")) showError("");
  } catch (_) {
    // the list is a convenience: the server default still works
  } finally {
    clearTimeout(timer);
  }
}

export function setUpKey() {
  el.key.value = localStorage.getItem(KEY_STORE) || "";
  if (el.key.value) el.keyBox.open = true;
  el.key.addEventListener("change", () => {
    const key = el.key.value.trim();
    if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
    loadModels();
  });
}
