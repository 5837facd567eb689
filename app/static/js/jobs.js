// Jobs you can leave (POST /v1/jobs): a file dropped on the page (or "Leave as a job") is uploaded as a job. The
// page keeps its jobs' ids in localStorage (nothing is kept on the server's disk; the audio stays in this browser,
// audio-store.js), polls the ones still queued or running, and lists each with its status, a progress bar and its
// ETA. A reload rebuilds the list from the ids; a job that finished opens in the reader (reader.js) once.

import { dropAudio, keepAudio } from "./audio-store.js";
import { authHeaders, clock, el, keyMessage, revealKey, showError } from "./dom.js";
import { closeReader, openReader, readerShows } from "./reader.js";

const STORE = "stt.jobs";
const POLL_MS = 1000;
const ACTIVE = new Set(["checking", "uploading", "queued", "running"]); // "checking": read from storage, not asked yet

const section = document.getElementById("jobs");
const list = document.getElementById("job-list");
const asJob = document.getElementById("as-job");
const speakers = document.getElementById("speakers");

// Newest first: {id, name, shown (opened in the reader once), state (the server's job, or {status: "uploading"})}
let jobs = [];
let polling = null;

function load() {
  try {
    const kept = JSON.parse(localStorage.getItem(STORE) || "[]");
    return Array.isArray(kept) ? kept.filter((j) => j && typeof j.id === "string") : [];
  } catch (_) {
    return [];
  }
}

function save() {
  const kept = jobs.filter((j) => j.id).map(({ id, name, shown }) => ({ id, name, shown }));
  localStorage.setItem(STORE, JSON.stringify(kept));
}

function describe(state) {
  const eta = state.eta_seconds != null ? ` · done in about ${clock(state.eta_seconds)}` : "";
  switch (state.status) {
    case "checking": return "Asking the server…";
    case "uploading": return `Uploading… ${Math.round((state.upload || 0) * 100)}%`;
    case "queued": return `Queued: ${state.position} ahead${eta}`;
    case "running": return `Transcribing… ${Math.round((state.progress || 0) * 100)}%${eta}`;
    case "succeeded": return `Done: ${clock(state.duration || 0)} of audio`;
    case "failed": return `Failed: ${(state.error && state.error.message) || "unknown error"}`;
    case "cancelled": return "Cancelled";
    default: return "No longer on the server (a result is kept for a while after it finishes; a restart loses it)";
  }
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  return b;
}

function render() {
  section.hidden = jobs.length === 0;
  list.replaceChildren(...jobs.map((job, index) => {
    const { state } = job;
    const li = document.createElement("li");
    li.className = "job";
    li.dataset.index = String(index);
    li.dataset.status = state.status;
    const name = document.createElement("span");
    name.className = "job-name";
    name.textContent = job.name;
    const status = document.createElement("span");
    status.className = "job-status";
    status.textContent = describe(state);
    const bar = document.createElement("progress");
    bar.max = 1;
    const done = state.status === "uploading" ? state.upload : state.progress;
    if (done != null) bar.value = done;
    const actions = document.createElement("span");
    actions.className = "job-actions";
    if (state.status === "succeeded") actions.append(button("Open", "open"));
    if (job.id) actions.append(button(ACTIVE.has(state.status) ? "Cancel" : "Remove", "remove"));
    li.append(name, status, bar, actions);
    return li;
  }));
}

function refusal(xhr) {
  let message = "";
  try { message = JSON.parse(xhr.responseText).error.message; } catch (_) { message = ""; }
  if (xhr.status === 0) return "Could not reach the server (network error or connection closed).";
  if (xhr.status === 401) return keyMessage();
  const wait = xhr.getResponseHeader("Retry-After");
  return `The job was refused (${xhr.status}): ${message}${wait ? ` Try again in ${wait} s.` : ""}`;
}

/** Upload `file` as a job; its entry shows the upload, then the job. */
export function submitJob(file) {
  showError("");
  const entry = { id: null, name: file.name, shown: false, state: { status: "uploading", upload: 0 } };
  jobs.unshift(entry);
  render();
  const form = new FormData();
  form.append("file", file, file.name);
  if (el.model.value) form.append("model", el.model.value);
  if (el.language.value) form.append("language", el.language.value);
  // the result is rendered when fetched; diarized_json also finds who spoke
  form.append("response_format", speakers.checked ? "diarized_json" : "verbose_json");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) entry.state.upload = e.loaded / e.total;
    render();
  };
  const refused = () => {
    jobs = jobs.filter((j) => j !== entry);
    render();
    if (xhr.status === 401) revealKey();
    showError(refusal(xhr));
  };
  xhr.onload = async () => {
    if (xhr.status !== 202) {
      refused();
      return;
    }
    const job = JSON.parse(xhr.responseText);
    entry.id = job.id;
    entry.state = job;
    save();
    render();
    await keepAudio(job.id, file);
    poll();
  };
  xhr.onerror = refused;
  xhr.send(form);
}

async function refresh(entry) {
  try {
    const res = await fetch(`/v1/jobs/${encodeURIComponent(entry.id)}`, { headers: authHeaders() });
    if (res.ok) entry.state = await res.json();
    else if (res.status === 404) entry.state = { status: "gone" };
    else if (res.status === 401) revealKey(keyMessage());
  } catch (_) {
    // the server is unreachable for now: try again at the next poll
  }
}

async function poll() {
  clearTimeout(polling);
  const watched = jobs.filter((j) => j.id && ACTIVE.has(j.state.status));
  await Promise.all(watched.map(refresh));
  render();
  const finished = jobs.find((j) => j.state.status === "succeeded" && !j.shown);
  if (finished && !readerShows()) show(finished);
  if (jobs.some((j) => j.id && ACTIVE.has(j.state.status))) polling = setTimeout(poll, POLL_MS);
}

function show(entry) {
  entry.shown = true;
  save();
  openReader(entry.id, entry.name, entry.state);
}

async function remove(entry) {
  try {
    const res = await fetch(`/v1/jobs/${encodeURIComponent(entry.id)}`, { method: "DELETE", headers: authHeaders() });
    if (res.ok) {
      const body = await res.json();
      if (body.object === "job") { // it was queued or running: now cancelled, kept until it expires
        entry.state = body;
        render();
        return;
      }
    }
  } catch (_) {
    // forgotten here in any case
  }
  jobs = jobs.filter((j) => j !== entry);
  if (readerShows(entry.id)) closeReader();
  save();
  render();
  dropAudio(entry.id);
}

export function setUpJobs() {
  jobs = load().map((kept) => ({ ...kept, state: { status: "checking" } }));
  render();
  poll(); // every job is fetched once (finished ones too), then the active ones until they end
  el.drop.addEventListener("drop", (e) => {
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) submitJob(f);
  });
  asJob.addEventListener("click", () => {
    const f = el.file.files[0];
    if (f) submitJob(f); else showError("Choose a file first.");
  });
  list.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (!b) return;
    const entry = jobs[Number(b.closest(".job").dataset.index)];
    if (b.dataset.action === "open") show(entry);
    else remove(entry);
  });
}
