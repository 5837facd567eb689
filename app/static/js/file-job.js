// A file's transcription: one XMLHttpRequest carries it. Its upload events give upload progress (fetch cannot
// report upload progress, and Chromium streams request bodies only over HTTP/2), and its progressive responseText
// feeds the server-sent-event parser (verbose_json, streamed). Aborting it closes the connection, which is how the
// server learns to stop the job.

import { addSegmentLine, authHeaders, clock, el, keyMessage, revealKey, setStatus, showError } from "./dom.js";
import { clearResult, setResult } from "./result.js";
import { sseParser } from "./sse.js";

const QUIET_LIMIT_MS = 120000; // the server sends a keep-alive every few seconds; silence this long means trouble

let file = null;
let audioSeconds = null; // from the browser's own reading of the file, when it can
let job = null; // the running job

export function chosenFile() { return file; }

export function jobRunning() { return job !== null; }

function chooseFile(f) {
  file = f || null;
  audioSeconds = null;
  el.fileName.textContent = file ? `${file.name} (${(file.size / 1048576).toFixed(1)} MB)` : "";
  if (!file) return;
  const probe = new Audio();
  const url = URL.createObjectURL(file);
  probe.preload = "metadata";
  probe.onloadedmetadata = () => {
    if (Number.isFinite(probe.duration)) audioSeconds = probe.duration;
    URL.revokeObjectURL(url);
  };
  probe.onerror = () => URL.revokeObjectURL(url);
  probe.src = url;
}

function errorText(status, body, retryAfter) {
  let message = "";
  try {
    const parsed = JSON.parse(body);
    message = (parsed.error && parsed.error.message) || parsed.detail || "";
  } catch (_) {
    message = (body || "").trim().slice(0, 300);
  }
  switch (status) {
    case 0: return "Could not reach the server (network error or connection closed).";
    case 400: return `The server refused the request: ${message || "bad request."}`;
    case 401: return keyMessage();
    case 413: return `The file is too large for this server. ${message}`.trim();
    case 503: {
      const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again later.";
      return `The server is busy${message ? `: ${message}` : "."}${wait}`;
    }
    default: return `The server answered ${status}. ${message}`.trim();
  }
}

function setRunning(running) {
  for (const c of [el.file, el.model, el.language, el.key, el.go, el.mic]) c.disabled = running;
  el.cancel.hidden = !running;
  el.progress.hidden = !running;
  el.drop.classList.toggle("busy", running);
}

function tick() {
  if (!job) return;
  if (Date.now() - job.lastActivity > QUIET_LIMIT_MS) {
    finish(null, "The server sent nothing for two minutes; stopped waiting.");
    return;
  }
  const elapsed = (Date.now() - job.started) / 1000;
  if (job.phase === "upload") {
    const pct = Math.round(el.uploadBar.value * 100);
    setStatus(`Uploading… ${pct}% · ${clock(elapsed)} elapsed`);
    return;
  }
  let position = "";
  if (job.audioPosition > 0) {
    position = ` · audio at ${clock(job.audioPosition)}${audioSeconds ? ` of ${clock(audioSeconds)}` : ""}`;
  }
  setStatus(`Transcribing… ${clock(elapsed)} elapsed${position}`);
}

function addSegment(seg) {
  job.segments.push(seg);
  job.audioPosition = Math.max(job.audioPosition, seg.end);
  if (audioSeconds) el.audioBar.value = Math.min(1, job.audioPosition / audioSeconds);
  addSegmentLine(seg);
  el.segmentCount.textContent = String(job.segments.length);
  tick();
}

function onEvent(payload) {
  if (!job) return;
  if (payload === "[DONE]") return;
  let event;
  try { event = JSON.parse(payload); } catch (_) { return; }
  if (event.type === "transcript.text.delta") {
    job.text += event.delta || "";
    el.transcript.textContent = job.text;
    el.transcript.scrollTop = el.transcript.scrollHeight;
  } else if (event.type === "transcript.text.segment") {
    addSegment(event);
  } else if (event.type === "transcript.text.done") {
    const seconds = event.usage && event.usage.seconds;
    finish({
      text: typeof event.text === "string" ? event.text : job.text,
      language: event.language || el.language.value || null,
      duration: seconds || job.audioPosition || audioSeconds || 0,
      segments: job.segments,
    });
  } else if (event.type === "error") {
    finish(null, `Transcription failed: ${(event.error && event.error.message) || "unknown error"}`);
  }
}

// Ends the job: with a result, with an error (shown as such), or with a plain note (a cancel is not an error).
function finish(done, error, note) {
  if (!job) return;
  const current = job;
  job = null;
  clearInterval(current.timer);
  if (current.xhr.readyState !== XMLHttpRequest.DONE) {
    current.closing = true;
    current.xhr.abort();
  }
  setRunning(false);
  if (error || note) {
    showError(error || "");
    const kept = current.text ? " The text so far is kept below." : "";
    setStatus(`${note || "Stopped."}${kept}`);
    el.result.hidden = !current.text;
    el.result.classList.add("partial");
    return;
  }
  const elapsed = (Date.now() - current.started) / 1000;
  const speed = done.duration && elapsed > 0 ? ` (${(done.duration / elapsed).toFixed(1)}× real time)` : "";
  setStatus(`Done: ${clock(done.duration)} of audio in ${elapsed.toFixed(1)} s${speed}.`);
  el.result.classList.remove("partial");
  el.result.hidden = false;
  setResult(done);
}

function start() {
  showError("");
  if (!file) {
    showError("Choose a file first.");
    el.file.focus();
    return;
  }
  clearResult();
  el.uploadBar.value = 0;
  el.audioBar.removeAttribute("value");

  const form = new FormData();
  form.append("file", file, file.name);
  if (el.model.value) form.append("model", el.model.value);
  if (el.language.value) form.append("language", el.language.value);
  form.append("response_format", "verbose_json"); // so segment events arrive, for timings and subtitles
  form.append("stream", "true");

  const xhr = new XMLHttpRequest();
  job = {
    xhr, started: Date.now(), lastActivity: Date.now(), phase: "upload",
    text: "", segments: [], audioPosition: 0, streaming: null, seen: 0, closing: false,
  };
  const current = job;
  const feed = sseParser(onEvent);
  const pump = () => {
    const text = xhr.responseText;
    if (text.length > current.seen) {
      current.lastActivity = Date.now();
      const chunk = text.slice(current.seen);
      current.seen = text.length;
      feed(chunk);
    }
  };

  xhr.open("POST", "/v1/audio/transcriptions");
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.setRequestHeader("Accept", "text/event-stream");
  xhr.setRequestHeader("X-Resume-Grace", "0"); // Cancel is deliberate: the server stops the job at once
  xhr.upload.onprogress = (e) => {
    current.lastActivity = Date.now();
    if (e.lengthComputable) el.uploadBar.value = e.loaded / e.total;
    tick();
  };
  xhr.upload.onload = () => {
    el.uploadBar.value = 1;
    current.phase = "transcribe";
    tick();
  };
  xhr.onreadystatechange = () => {
    if (xhr.readyState >= XMLHttpRequest.HEADERS_RECEIVED && current.streaming === null && xhr.status) {
      current.phase = "transcribe";
      current.streaming = xhr.status === 200 && (xhr.getResponseHeader("Content-Type") || "").includes("event-stream");
    }
  };
  xhr.onprogress = () => { if (current.streaming) pump(); };
  xhr.onload = () => {
    if (job !== current) return;
    if (current.streaming) {
      pump();
      if (job === current) finish(null, "The connection closed before the transcript was finished.");
      return;
    }
    if (xhr.status === 200) {
      // A server that answered without streaming: take the whole verbose_json body.
      try {
        const body = JSON.parse(xhr.responseText);
        (body.segments || []).forEach((s) => addSegment(s));
        finish({ text: body.text || "", language: body.language || null, duration: body.duration || 0, segments: current.segments });
      } catch (_) {
        finish(null, "The server's answer could not be read.");
      }
      return;
    }
    if (xhr.status === 401) revealKey();
    finish(null, errorText(xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After")));
  };
  xhr.onerror = () => finish(null, errorText(0, ""));
  xhr.onabort = () => { if (!current.closing) finish(null, null, "Cancelled."); };
  current.timer = setInterval(tick, 1000);

  setRunning(true);
  tick();
  xhr.send(form);
}

export function setUpFileJob() {
  el.file.addEventListener("change", () => chooseFile(el.file.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    el.drop.addEventListener(type, (e) => { e.preventDefault(); el.drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    el.drop.addEventListener(type, () => el.drop.classList.remove("over"));
  }
  el.drop.addEventListener("drop", (e) => e.preventDefault()); // a dropped file becomes a job (jobs.js)
  // A file dropped beside the zone must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  el.form.addEventListener("submit", (e) => { e.preventDefault(); if (!job) start(); });
  el.cancel.addEventListener("click", () => {
    if (job) finish(null, null, "Cancelled; the server has been told to stop.");
    el.go.focus();
  });
}
