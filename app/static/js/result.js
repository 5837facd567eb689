// The finished transcript ({text, language, duration, segments}) and the result panel that shows it in the chosen
// format. A file job or a dictation sets it; the downloads read it.

import { el } from "./dom.js";
import { render } from "./subtitles.js";

const TITLES = { text: "Transcript", json: "JSON", verbose_json: "Verbose JSON", srt: "SRT", vtt: "WebVTT" };

let result = null;
let resultName = null; // the download name when the result is not from a file ("dictation")

export function currentResult() { return result; }

export function currentResultName() { return resultName; }

/** Keep `done` as the result (named `name` for downloads, or after the file when null) and show it. */
export function setResult(done, name = null) {
  result = done;
  resultName = name;
  showResult();
}

export function showResult() {
  if (!result) return;
  const format = el.format.value;
  el.resultTitle.textContent = TITLES[format] || "Transcript";
  el.transcript.textContent = render(result, format);
}

/** Empty the result panel for a new transcript (a file's or a dictation's). */
export function clearResult() {
  result = null;
  resultName = null;
  el.transcript.textContent = "";
  el.segments.replaceChildren();
  el.segmentCount.textContent = "0";
  el.result.hidden = false;
  el.result.classList.add("partial");
  el.resultTitle.textContent = "Transcript";
}

export function setUpResult() {
  el.format.addEventListener("change", showResult);
}
