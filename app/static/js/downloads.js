// The result out: as a .txt/.srt/.vtt/.json download (built here, no second transcription) or to the clipboard.

import { el, setStatus } from "./dom.js";
import { chosenFile } from "./file-job.js";
import { currentResult, currentResultName } from "./result.js";
import { toSrt, toVtt, verboseJson } from "./subtitles.js";

const TYPES = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt", json: "application/json" };

function baseName() {
  const file = chosenFile();
  return currentResultName() || (file ? file.name.replace(/\.[^.]+$/, "") : "") || "transcript";
}

function download(kind) {
  const result = currentResult();
  if (!result) return;
  const content = {
    txt: () => result.text.trim() + "\n",
    srt: () => toSrt(result.segments, result.duration),
    vtt: () => toVtt(result.segments, result.duration),
    json: () => JSON.stringify(verboseJson(result), null, 2) + "\n",
  }[kind]();
  const url = URL.createObjectURL(new Blob([content], { type: `${TYPES[kind]};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${baseName()}.${kind}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function copy() {
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
}

export function setUpDownloads() {
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download));
  }
  el.copy.addEventListener("click", copy);
}
