// The transcription page: plain ES2020, no framework, nothing loaded from elsewhere.
//
// One XMLHttpRequest carries each job: its upload events give upload progress (fetch cannot report upload
// progress, and Chromium streams request bodies only over HTTP/2), and its progressive responseText feeds the
// server-sent-event parser. Aborting it closes the connection, which is how the server learns to stop the job.
"use strict";

(() => {
  const KEY_STORE = "stt.apiKey";
  const QUIET_LIMIT_MS = 120000; // the server sends a keep-alive every few seconds; silence this long means trouble

  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("form"), drop: $("drop"), file: $("file"), fileName: $("file-name"),
    model: $("model"), language: $("language"), format: $("format"),
    keyBox: $("key-box"), key: $("api-key"), go: $("go"), cancel: $("cancel"),
    progress: $("progress"), uploadBar: $("upload-bar"), audioBar: $("audio-bar"),
    status: $("status"), error: $("error"), result: $("result"), resultTitle: $("result-title"),
    transcript: $("transcript"), segments: $("segments"), segmentCount: $("segment-count"),
    copy: $("copy"), mic: $("mic"),
  };

  let file = null;
  let audioSeconds = null; // from the browser's own reading of the file, when it can
  let job = null; // the running job
  let result = null; // the finished transcript: {text, language, duration, segments}
  let resultName = null; // the download name when the result is not from a file ("dictation")

  // ---------- small helpers ----------

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function setStatus(text) { el.status.textContent = text; }

  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = !text;
  }

  function authHeaders() {
    const key = el.key.value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function revealKey(message) {
    el.keyBox.open = true;
    el.key.focus();
    if (message) showError(message);
  }

  // ---------- server-sent events ----------

  // Returns a function to feed text chunks; calls onData(payload) for each complete event's data.
  function sseParser(onData) {
    let buffer = "";
    let data = [];
    return (chunk) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (let line of lines) {
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) onData(data.join("\n"));
          data = [];
        } else if (line.startsWith(":")) {
          // comment, e.g. ": keep-alive"
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") data.push(value);
        }
      }
    };
  }

  // ---------- subtitles: a port of app/render/subtitles.py ----------
  //
  // The stream gives segments, not words, so every segment takes the server's own path for segments without word
  // timings: its text split on whitespace, times spread in proportion to word length. For such transcripts the
  // page's SRT/VTT equal the server's byte for byte (lengths count code points and rounding is half-to-even, as in
  // Python). Words are grouped greedily; when the next word does not fit, the cue is cut at its best break point.

  const SUBTITLE = {
    maxLineChars: 42, maxLines: 2, maxCueMs: 7000,
    minCueMs: 1000, // a short cue stays up this long when the next one leaves room
    pauseMs: 500, // a silence this long is a good place to break
    longPauseMs: 1500, // a silence this long always ends a cue
  };
  const SENTENCE_ENDS = ".!?…。！？";
  const CLAUSE_ENDS = ",;:–—、，；：";
  const CLOSERS = /["'”’»)\]]+$/u;
  const SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/; // str.split()

  const len = (s) => [...s].length; // code points, like Python's len()

  function endsWith(text, marks) {
    const last = [...text.replace(CLOSERS, "")].pop();
    return last !== undefined && marks.includes(last);
  }

  function ms(seconds) { // Python's max(round(seconds * 1000), 0): ties go to the even neighbour
    if (!Number.isFinite(seconds)) return 0;
    const v = seconds * 1000;
    const f = Math.floor(v);
    const r = v - f > 0.5 || (v - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
    return Math.max(r, 0);
  }

  // All words as tokens {text, start, end, startsSegment} in whole milliseconds that never go backwards.
  function tokens(segments) {
    const out = [];
    let lastStart = 0;
    for (const seg of segments) {
      const words = String(seg.text || "").split(SPACE).filter(Boolean);
      const total = words.reduce((n, w) => n + len(w) + 1, 0);
      const span = Math.max(seg.end - seg.start, 0);
      let done = 0;
      words.forEach((text, i) => {
        const start = Math.max(ms(seg.start + (span * done) / total), lastStart);
        done += len(text) + 1;
        out.push({ text, start, end: Math.max(ms(seg.start + (span * done) / total), start), startsSegment: i === 0 });
        lastStart = start;
      });
    }
    return out;
  }

  // Greedy line filling: the fewest lines of at most maxLineChars (a longer word gets a line of its own).
  function wrap(words) {
    const lines = [];
    for (const word of words) {
      if (lines.length && len(lines[lines.length - 1]) + 1 + len(word) <= SUBTITLE.maxLineChars) {
        lines[lines.length - 1] += " " + word;
      } else {
        lines.push(word);
      }
    }
    return lines;
  }

  // A single token always fits (a very long word or a very slow one stands alone).
  function fits(toks) {
    if (toks.length === 1) return true;
    if (Math.max(...toks.map((t) => t.end)) - toks[0].start > SUBTITLE.maxCueMs) return false;
    const lines = wrap(toks.map((t) => t.text));
    return lines.length <= SUBTITLE.maxLines && lines.every((line) => len(line) <= SUBTITLE.maxLineChars);
  }

  // Where to end the cue: the index (1..length-1) of the token that starts the next one.
  function bestCut(toks) {
    const total = toks.slice(0, -1).reduce((n, t) => n + len(t.text) + 1, 0);
    let best = 1;
    let bestScore = -Infinity;
    let filled = 0;
    for (let cut = 1; cut < toks.length; cut++) {
      const previous = toks[cut - 1];
      const following = toks[cut];
      filled += len(previous.text) + 1;
      let score = filled / total; // prefer full cues ...
      if (endsWith(previous.text, SENTENCE_ENDS)) score += 1.0; // ... but rather break where the speech does
      else if (endsWith(previous.text, CLAUSE_ENDS)) score += 0.5;
      if (following.start - previous.end >= SUBTITLE.pauseMs) score += 1.0;
      if (following.startsSegment) score += 0.5;
      if (score >= bestScore) [best, bestScore] = [cut, score];
    }
    return best;
  }

  function mustBreak(previous, token) {
    const gap = token.start - previous.end;
    return gap >= SUBTITLE.longPauseMs || (gap >= SUBTITLE.pauseMs && endsWith(previous.text, SENTENCE_ENDS));
  }

  function group(toks) {
    const groups = [];
    let current = [];
    for (const token of toks) {
      if (current.length && mustBreak(current[current.length - 1], token)) {
        groups.push(current);
        current = [];
      }
      while (current.length && !fits([...current, token])) {
        const cut = bestCut([...current, token]);
        groups.push(current.slice(0, cut));
        current = current.slice(cut);
      }
      current.push(token);
    }
    if (current.length) groups.push(current);
    return groups;
  }

  // The cue's lines: one if the text fits, else two balanced lines, breaking after punctuation if it costs little.
  function layout(words) {
    const lines = wrap(words);
    if (lines.length !== 2) return lines;
    let best = null;
    for (let cut = 1; cut < words.length; cut++) {
      const first = words.slice(0, cut).join(" ");
      const second = words.slice(cut).join(" ");
      if (len(first) > SUBTITLE.maxLineChars || len(second) > SUBTITLE.maxLineChars) continue;
      const cost = Math.abs(len(first) - len(second)) - (endsWith(words[cut - 1], SENTENCE_ENDS + CLAUSE_ENDS) ? 8 : 0);
      if (!best || cost < best.cost) best = { cost, lines: [first, second] };
    }
    return best ? best.lines : lines;
  }

  // Cues {start, end, lines} in whole milliseconds, in order, never overlapping, each with start < end.
  // `duration` (seconds of audio) lets the last cue stay up its minimum time.
  function buildCues(segments, duration = 0) {
    const groups = group(tokens(segments));
    const timed = [];
    let previousEnd = 0;
    for (const g of groups) {
      const start = Math.max(g[0].start, previousEnd);
      const end = Math.max(Math.max(...g.map((t) => t.end)), start + 1);
      timed.push([start, end]);
      previousEnd = end;
    }
    const audioEnd = ms(duration);
    return groups.map((g, i) => {
      const [start, end] = timed[i];
      const limit = i + 1 < timed.length ? timed[i + 1][0] : Math.max(audioEnd, end);
      const shown = Math.max(end, Math.min(start + SUBTITLE.minCueMs, limit));
      return { start, end: shown, lines: layout(g.map((t) => t.text)) };
    });
  }

  function stamp(totalMs, sep) {
    const p = (n, w) => String(n).padStart(w, "0");
    const s = Math.floor(totalMs / 1000);
    return `${p(Math.floor(s / 3600), 2)}:${p(Math.floor(s / 60) % 60, 2)}:${p(s % 60, 2)}${sep}${p(totalMs % 1000, 3)}`;
  }

  function toSrt(segments, duration = 0) {
    return buildCues(segments, duration)
      .map((c, i) => `${i + 1}\n${stamp(c.start, ",")} --> ${stamp(c.end, ",")}\n${c.lines.join("\n")}\n\n`)
      .join("");
  }

  function toVtt(segments, duration = 0) {
    const escape = (line) => line.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const body = buildCues(segments, duration)
      .map((c) => `${stamp(c.start, ".")} --> ${stamp(c.end, ".")}\n${c.lines.map(escape).join("\n")}\n\n`)
      .join("");
    return `WEBVTT\n\n${body}`;
  }

  function verboseJson(r) {
    return {
      task: "transcribe",
      language: r.language,
      duration: r.duration,
      text: r.text,
      segments: r.segments.map((s) => ({ id: s.id, start: s.start, end: s.end, text: s.text })),
    };
  }

  function render(r, format) {
    switch (format) {
      case "json": return JSON.stringify({ text: r.text }, null, 2);
      case "verbose_json": return JSON.stringify(verboseJson(r), null, 2);
      case "srt": return toSrt(r.segments, r.duration);
      case "vtt": return toVtt(r.segments, r.duration);
      default: return r.text;
    }
  }

  // ---------- file choice ----------

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

  el.file.addEventListener("change", () => chooseFile(el.file.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    el.drop.addEventListener(type, (e) => { e.preventDefault(); el.drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    el.drop.addEventListener(type, () => el.drop.classList.remove("over"));
  }
  el.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) chooseFile(f);
  });
  // A file dropped beside the zone must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // ---------- models and key ----------

  async function loadModels() {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 10000);
    try {
      const res = await fetch("/v1/models", { headers: authHeaders(), signal: ctrl.signal });
      if (res.status === 401) {
        revealKey(el.key.value ? "The API key was not accepted." : "This server requires an API key: enter it below.");
        return;
      }
      if (!res.ok) return;
      const body = await res.json();
      const models = (body.data || []).filter((m) => m && m.id);
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

  el.key.value = localStorage.getItem(KEY_STORE) || "";
  if (el.key.value) el.keyBox.open = true;
  el.key.addEventListener("change", () => {
    const key = el.key.value.trim();
    if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
    loadModels();
  });

  // ---------- a job ----------

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
      case 401: return el.key.value ? "The API key was not accepted." : "This server requires an API key: enter it below.";
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
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
    li.append(time, ` ${String(seg.text).trim()}`);
    el.segments.append(li);
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
    result = done;
    const elapsed = (Date.now() - current.started) / 1000;
    const speed = result.duration && elapsed > 0 ? ` (${(result.duration / elapsed).toFixed(1)}× real time)` : "";
    setStatus(`Done: ${clock(result.duration)} of audio in ${elapsed.toFixed(1)} s${speed}.`);
    el.result.classList.remove("partial");
    el.result.hidden = false;
    showResult();
  }

  function showResult() {
    if (!result) return;
    const format = el.format.value;
    const names = { text: "Transcript", json: "JSON", verbose_json: "Verbose JSON", srt: "SRT", vtt: "WebVTT" };
    el.resultTitle.textContent = names[format] || "Transcript";
    el.transcript.textContent = render(result, format);
  }
  el.format.addEventListener("change", showResult);

  /** Empty the result panel for a new transcript (a file's or a dictation's). */
  function clearResult() {
    result = null;
    resultName = null;
    el.transcript.textContent = "";
    el.segments.replaceChildren();
    el.segmentCount.textContent = "0";
    el.result.hidden = false;
    el.result.classList.add("partial");
    el.resultTitle.textContent = "Transcript";
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

  el.form.addEventListener("submit", (e) => { e.preventDefault(); if (!job) start(); });
  el.cancel.addEventListener("click", () => {
    if (job) finish(null, null, "Cancelled; the server has been told to stop.");
    el.go.focus();
  });


  // ---------- live dictation (OpenAI's Realtime transcription protocol over a WebSocket) ----------
  //
  // The microphone goes through an AudioWorklet (static/mic-worklet.js) that resamples to 24 kHz PCM16; blocks of
  // ~100 ms are sent as input_audio_buffer.append. The server finds utterances (server VAD): each has deltas while
  // it is spoken (shown dimmed, append-only previews) and a completed transcript that replaces them.
  const DRAIN_MS = 8000; // after stop, how long committed utterances may still take

  let dictation = null;

  function liveText(d) {
    const parts = [];
    for (const item of d.items.values()) {
      const text = (item.final !== null ? item.final : item.partial).trim();
      if (text) parts.push({ text, pending: item.final === null });
    }
    return parts;
  }

  function showLive(d) {
    const nodes = [];
    liveText(d).forEach((part, i) => {
      if (i) nodes.push(document.createTextNode(" "));
      if (part.pending) {
        const span = document.createElement("span");
        span.className = "pending";
        span.textContent = part.text;
        nodes.push(span);
      } else {
        nodes.push(document.createTextNode(part.text));
      }
    });
    el.transcript.replaceChildren(...nodes);
  }

  function item(d, id) {
    if (!d.items.has(id)) d.items.set(id, { partial: "", final: null, start: null, end: null });
    return d.items.get(id);
  }

  function onLiveEvent(d, event) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        item(d, event.item_id).start = event.audio_start_ms / 1000;
        setStatus("Listening: speech…");
        break;
      case "input_audio_buffer.speech_stopped":
        item(d, event.item_id).end = event.audio_end_ms / 1000;
        setStatus("Listening…");
        break;
      case "input_audio_buffer.committed":
        item(d, event.item_id);
        d.pending.add(event.item_id);
        break;
      case "conversation.item.input_audio_transcription.delta":
        item(d, event.item_id).partial += event.delta;
        break;
      case "conversation.item.input_audio_transcription.completed":
        item(d, event.item_id).final = event.transcript;
        d.pending.delete(event.item_id);
        break;
      case "conversation.item.input_audio_transcription.failed":
        item(d, event.item_id).final = "";
        d.pending.delete(event.item_id);
        showError(`An utterance could not be transcribed: ${(event.error && event.error.message) || "unknown error"}`);
        break;
      case "error":
        if (event.error && event.error.code !== "input_audio_buffer_commit_empty") {
          showError(event.error.message || "The server reported an error.");
        }
        break;
      default:
        return;
    }
    showLive(d);
    if (d.stopping && d.pending.size === 0) endDictation(d);
  }

  function base64(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  async function startDictation() {
    showError("");
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      showError("This browser cannot capture the microphone here: it needs an https page, or one opened as localhost.");
      return;
    }
    const d = { items: new Map(), pending: new Set(), stopping: false, ended: false, seconds: 0, started: Date.now() };
    dictation = d;
    el.mic.setAttribute("aria-pressed", "true");
    el.mic.textContent = "Stop";
    el.go.disabled = true;
    clearResult();
    setStatus("Starting the microphone…");
    try {
      d.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      d.context = new AudioContext();
      await d.context.audioWorklet.addModule("/static/mic-worklet.js");
    } catch (err) {
      endDictation(d, `The microphone could not be opened: ${err.message || err}`);
      return;
    }
    if (d.ended) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const key = el.key.value.trim();
    const protocols = ["realtime"].concat(key ? [`openai-insecure-api-key.${key}`] : []);
    const socket = new WebSocket(`${scheme}//${location.host}/v1/realtime?intent=transcription`, protocols);
    d.socket = socket;
    socket.onopen = () => {
      const transcription = { model: el.model.value || null, language: el.language.value || null };
      socket.send(JSON.stringify({
        type: "session.update",
        session: { type: "transcription", audio: { input: { format: { type: "audio/pcm", rate: 24000 }, transcription } } },
      }));
      const source = d.context.createMediaStreamSource(d.stream);
      d.node = new AudioWorkletNode(d.context, "mic-capture");
      d.node.port.onmessage = (e) => {
        if (e.data === "stopped") {
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
          d.drain = setTimeout(() => endDictation(d), DRAIN_MS);
          if (d.pending.size === 0) setTimeout(() => { if (d.pending.size === 0) endDictation(d); }, 1500);
          return;
        }
        d.seconds += e.data.byteLength / 2 / 24000;
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: base64(e.data) }));
        }
      };
      source.connect(d.node);
      setStatus("Listening…");
    };
    socket.onmessage = (e) => {
      try { onLiveEvent(d, JSON.parse(e.data)); } catch (_) { /* not an event of ours */ }
    };
    socket.onclose = (e) => {
      if (d.ended) return;
      const why = e.code === 1013 ? "The server has too many live sessions; try again later."
        : e.code === 1006 && !d.stopping ? "The server refused the connection (is an API key needed?)." : null;
      if (why && e.code === 1006) revealKey();
      endDictation(d, why);
    };
  }

  function stopDictation() {
    const d = dictation;
    if (!d || d.stopping) return;
    d.stopping = true;
    el.mic.disabled = true;
    setStatus("Finishing the last words…");
    if (d.node) d.node.port.postMessage("stop"); else endDictation(d);
    if (d.stream) d.stream.getTracks().forEach((t) => t.stop());
  }

  function endDictation(d, error) {
    if (d.ended) return;
    d.ended = true;
    clearTimeout(d.drain);
    if (d.stream) d.stream.getTracks().forEach((t) => t.stop());
    if (d.context) d.context.close();
    if (d.socket && d.socket.readyState <= WebSocket.OPEN) d.socket.close(1000);
    if (dictation === d) dictation = null;
    el.mic.setAttribute("aria-pressed", "false");
    el.mic.textContent = "Dictate";
    el.mic.disabled = false;
    el.go.disabled = false;
    if (error) showError(error);
    const segments = [];
    for (const it of d.items.values()) {
      const text = (it.final !== null ? it.final : it.partial).trim();
      if (!text) continue;
      const start = it.start !== null ? it.start : 0;
      segments.push({ id: segments.length, start, end: it.end !== null ? it.end : start, text: ` ${text}`, words: [] });
    }
    result = {
      text: segments.map((s) => s.text.trim()).join(" "),
      language: el.language.value || null,
      duration: d.seconds,
      segments,
    };
    resultName = "dictation";
    el.result.classList.remove("partial");
    el.result.hidden = !segments.length;
    for (const seg of segments) {
      const li = document.createElement("li");
      const time = document.createElement("time");
      time.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
      li.append(time, seg.text);
      el.segments.append(li);
    }
    el.segmentCount.textContent = String(segments.length);
    setStatus(segments.length ? `Dictation: ${clock(d.seconds)} of audio.` : "Dictation ended; no speech was heard.");
    showResult();
  }

  el.mic.addEventListener("click", () => {
    if (dictation) stopDictation(); else if (!job) startDictation();
  });

  // ---------- results out ----------

  function baseName() {
    if (resultName) return resultName;
    return (file ? file.name.replace(/\.[^.]+$/, "") : "") || "transcript";
  }

  function download(kind) {
    if (!result) return;
    const content = {
      txt: () => result.text.trim() + "\n",
      srt: () => toSrt(result.segments, result.duration),
      vtt: () => toVtt(result.segments, result.duration),
      json: () => JSON.stringify(verboseJson(result), null, 2) + "\n",
    }[kind]();
    const types = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt", json: "application/json" };
    const url = URL.createObjectURL(new Blob([content], { type: `${types[kind]};charset=utf-8` }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${baseName()}.${kind}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download));
  }

  el.copy.addEventListener("click", async () => {
    const text = el.transcript.textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // Plain http on a LAN is not a secure context: fall back to a selection copy.
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setStatus("Copied to the clipboard.");
  });

  // For tests and the curious: the subtitle builder is pure and needs no server.
  window.sttSubtitles = { buildCues, toSrt, toVtt };

  loadModels();
})();
