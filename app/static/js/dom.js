// The page's elements and the small helpers every part of it uses: status line, error line, the API key.

const $ = (id) => document.getElementById(id);

export const el = {
  form: $("form"), drop: $("drop"), file: $("file"), fileName: $("file-name"),
  model: $("model"), language: $("language"), format: $("format"),
  keyBox: $("key-box"), key: $("api-key"), go: $("go"), cancel: $("cancel"),
  progress: $("progress"), uploadBar: $("upload-bar"), audioBar: $("audio-bar"),
  status: $("status"), error: $("error"), result: $("result"), resultTitle: $("result-title"),
  transcript: $("transcript"), segments: $("segments"), segmentCount: $("segment-count"),
  copy: $("copy"), mic: $("mic"),
};

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function setStatus(text) { el.status.textContent = text; }

export function showError(text) {
  el.error.textContent = text;
  el.error.hidden = !text;
}

export function apiKey() { return el.key.value.trim(); }

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function revealKey(message) {
  el.keyBox.open = true;
  el.key.focus();
  if (message) showError(message);
}

export function keyMessage() {
  return el.key.value ? "The API key was not accepted." : "This server requires an API key: enter it below.";
}

/** A segment's line in the timings list: its times and its text. */
export function addSegmentLine(seg) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
  li.append(time, ` ${String(seg.text).trim()}`);
  el.segments.append(li);
}
