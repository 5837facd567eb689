// A finished job as a reader, not only as text: the browser's own copy of the audio (audio-store.js) plays beside
// the transcript, the segment being spoken is highlighted (and its word), clicking a segment's time or a word seeks
// there, and with diarized_json every speaker has a colour and a name. The transcript is the job's one result,
// fetched as verbose_json with word timings (and, for a diarized job, diarized_json for who said what); the
// downloads are the server's own renderings of it.

import { audioOf } from "./audio-store.js";
import { authHeaders, clock, showError } from "./dom.js";

const PALETTE = 8; // speaker colours: .speaker-0 ... .speaker-7 in style.css
const EXTENSIONS = { text: "txt", srt: "srt", vtt: "vtt", verbose_json: "json", diarized_json: "json" };

const section = document.getElementById("reader");
const title = document.getElementById("reader-title");
const player = document.getElementById("player");
const noAudio = document.getElementById("no-audio");
const text = document.getElementById("reader-text");
const downloads = document.getElementById("reader-downloads");

let showing = null; // {id, name, diarized, segments: [{start, end, node, words: [{start, end, node}]}]}
let spoken = { segment: null, word: null };

export function readerShows(id = null) { return showing !== null && (id === null || showing.id === id); }

async function result(id, query) {
  const res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/result?${query}`, { headers: authHeaders() });
  if (!res.ok) {
    let message = `${res.status}`;
    try { message = (await res.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

/** The words of `verbose` (in order), each in the segment whose time it falls in. */
function withWords(segments, words) {
  let next = 0;
  return segments.map((seg, i) => {
    const own = [];
    const last = i === segments.length - 1;
    while (next < words.length && (last || (words[next].start + words[next].end) / 2 < seg.end)) {
      own.push(words[next]);
      next += 1;
    }
    return { ...seg, words: own };
  });
}

function speakerName(label) {
  return /^[A-Z]$/.test(label) ? `Speaker ${label}` : label;
}

function segmentNode(seg, index, colours) {
  const p = document.createElement("p");
  p.className = "seg";
  p.dataset.index = String(index);
  p.dataset.start = String(seg.start);
  const time = document.createElement("button");
  time.type = "button";
  time.className = "seg-time";
  time.textContent = clock(seg.start);
  time.title = `Play from ${clock(seg.start)}`;
  p.append(time);
  if (seg.speaker != null) {
    if (!colours.has(seg.speaker)) colours.set(seg.speaker, colours.size % PALETTE);
    const who = document.createElement("span");
    who.className = `speaker speaker-${colours.get(seg.speaker)}`;
    who.textContent = speakerName(seg.speaker);
    p.classList.add(`speaker-${colours.get(seg.speaker)}`);
    p.append(who);
  }
  const said = document.createElement("span");
  said.className = "said";
  const words = seg.words.map((w) => {
    const span = document.createElement("span");
    span.className = "word";
    span.dataset.start = String(w.start);
    span.textContent = w.word.trim();
    return { start: w.start, end: w.end, node: span };
  });
  if (words.length) {
    words.forEach((w, i) => { if (i) said.append(" "); said.append(w.node); });
  } else {
    said.textContent = seg.text.trim();
  }
  p.append(said);
  return { start: seg.start, end: seg.end, node: p, words };
}

function locate(items, t) { // the last item starting at or before t (items sorted by start)
  let lo = 0;
  let hi = items.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found < 0 ? null : items[found];
}

function follow() {
  if (!showing) return;
  const t = player.currentTime;
  let segment = locate(showing.segments, t);
  if (segment && t > segment.end + 0.5) segment = null; // between segments: nobody speaks
  const word = segment ? locate(segment.words, t) : null;
  if (segment !== spoken.segment) {
    if (spoken.segment) spoken.segment.node.classList.remove("speaking");
    if (segment) {
      segment.node.classList.add("speaking");
      if (!player.paused) segment.node.scrollIntoView({ block: "nearest" });
    }
  }
  if (word !== spoken.word) {
    if (spoken.word) spoken.word.node.classList.remove("spoken");
    if (word) word.node.classList.add("spoken");
  }
  spoken = { segment, word };
}

function seek(seconds) {
  if (!player.src) return;
  player.currentTime = seconds;
  follow();
}

/** Show finished job `id` (named `name`; `job`: its state, for its format) in the reader. */
export async function openReader(id, name, job) {
  const diarized = job && job.response_format === "diarized_json";
  try {
    const words = "timestamp_granularities[]=word&timestamp_granularities[]=segment";
    const verbose = await (await result(id, `response_format=verbose_json&${words}`)).json();
    let segments = (verbose.segments || []).map((s) => ({ start: s.start, end: s.end, text: s.text, speaker: null }));
    if (diarized) {
      const bySpeaker = await (await result(id, "response_format=diarized_json")).json();
      segments = bySpeaker.segments.map((s) => ({ start: s.start, end: s.end, text: s.text, speaker: s.speaker }));
    }
    const colours = new Map();
    const shown = withWords(segments, verbose.words || []).map((seg, i) => segmentNode(seg, i, colours));
    text.replaceChildren(...shown.map((s) => s.node));
    if (player.src) URL.revokeObjectURL(player.src);
    const audio = await audioOf(id);
    if (audio) player.src = URL.createObjectURL(audio); else player.removeAttribute("src");
    player.hidden = !audio;
    noAudio.hidden = Boolean(audio);
    title.textContent = name;
    showing = { id, name, diarized, segments: shown };
    spoken = { segment: null, word: null };
    section.hidden = false;
    section.scrollIntoView({ block: "start" });
  } catch (err) {
    showError(`The result could not be read: ${err.message || err}`);
  }
}

export function closeReader() {
  showing = null;
  section.hidden = true;
  player.pause();
  if (player.src) URL.revokeObjectURL(player.src);
  player.removeAttribute("src");
}

async function download(format) {
  if (!showing) return;
  try {
    const blob = await (await result(showing.id, `response_format=${format}`)).blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `${showing.name.replace(/\.[^.]+$/, "") || "transcript"}.${EXTENSIONS[format]}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(`The download failed: ${err.message || err}`);
  }
}

export function setUpReader() {
  player.addEventListener("timeupdate", follow);
  player.addEventListener("seeked", follow);
  text.addEventListener("click", (e) => {
    const word = e.target.closest(".word");
    const seg = e.target.closest(".seg");
    if (word) seek(Number(word.dataset.start));
    else if (seg) seek(Number(seg.dataset.start));
  });
  downloads.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-format]");
    if (!b) return;
    const format = b.dataset.format === "json" && showing && showing.diarized ? "diarized_json" : b.dataset.format;
    download(format === "json" ? "verbose_json" : format);
  });
  document.getElementById("reader-close").addEventListener("click", closeReader);
}
