// Live dictation: OpenAI's Realtime transcription protocol over a WebSocket (/v1/realtime).
//
// The microphone goes through an AudioWorklet (static/mic-worklet.js) that resamples to 24 kHz PCM16; blocks of
// ~100 ms are sent as input_audio_buffer.append. The server finds utterances (server VAD): each has deltas while
// it is spoken (shown dimmed, append-only previews) and a completed transcript that replaces them.

import { addSegmentLine, apiKey, clock, el, revealKey, setStatus, showError } from "./dom.js";
import { jobRunning } from "./file-job.js";
import { clearResult, setResult } from "./result.js";

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
  const key = apiKey();
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
  el.result.classList.remove("partial");
  el.result.hidden = !segments.length;
  segments.forEach(addSegmentLine);
  el.segmentCount.textContent = String(segments.length);
  setStatus(segments.length ? `Dictation: ${clock(d.seconds)} of audio.` : "Dictation ended; no speech was heard.");
  const text = segments.map((s) => s.text.trim()).join(" ");
  setResult({ text, language: el.language.value || null, duration: d.seconds, segments }, "dictation");
}

export function setUpDictation() {
  el.mic.addEventListener("click", () => {
    if (dictation) stopDictation(); else if (!jobRunning()) startDictation();
  });
}
