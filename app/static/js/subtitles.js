// Subtitles and the other formats the page builds itself: a port of app/render/subtitles.py (ADR 11).
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

// A single token always fits (a very long word or a very slow one stands alone: buildCues caps its time).
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
export function buildCues(segments, duration = 0) {
  const groups = group(tokens(segments));
  const timed = [];
  let previousEnd = 0;
  for (const g of groups) {
    const start = Math.max(g[0].start, previousEnd);
    // a single very slow word (its letters seconds apart) is shown for maxCueMs, not for its whole span
    const end = Math.min(Math.max(Math.max(...g.map((t) => t.end)), start + 1), start + SUBTITLE.maxCueMs);
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

export function toSrt(segments, duration = 0) {
  return buildCues(segments, duration)
    .map((c, i) => `${i + 1}\n${stamp(c.start, ",")} --> ${stamp(c.end, ",")}\n${c.lines.join("\n")}\n\n`)
    .join("");
}

export function toVtt(segments, duration = 0) {
  const escape = (line) => line.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const body = buildCues(segments, duration)
    .map((c) => `${stamp(c.start, ".")} --> ${stamp(c.end, ".")}\n${c.lines.map(escape).join("\n")}\n\n`)
    .join("");
  return `WEBVTT\n\n${body}`;
}

export function verboseJson(r) {
  return {
    task: "transcribe",
    language: r.language,
    duration: r.duration,
    text: r.text,
    segments: r.segments.map((s) => ({ id: s.id, start: s.start, end: s.end, text: s.text })),
  };
}

export function render(r, format) {
  switch (format) {
    case "json": return JSON.stringify({ text: r.text }, null, 2);
    case "verbose_json": return JSON.stringify(verboseJson(r), null, 2);
    case "srt": return toSrt(r.segments, r.duration);
    case "vtt": return toVtt(r.segments, r.duration);
    default: return r.text;
  }
}
