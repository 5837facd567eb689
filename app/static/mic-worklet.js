// Microphone capture for live dictation: mono float input at the context's rate -> PCM16 at 24 kHz, posted to the
// page in blocks of about 100 ms. Resampling is linear interpolation after a box low-pass as wide as the rate ratio
// (enough for speech recognition; the server resamples again to 16 kHz with FFmpeg's resampler).
"use strict";

const TARGET_RATE = 24000;
const BLOCK = 2400; // 100 ms at 24 kHz

class MicCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / TARGET_RATE; // input samples per output sample
    this.width = Math.max(1, Math.round(this.ratio));
    this.history = new Float32Array(this.width); // last inputs, for the box filter
    this.historyAt = 0;
    this.position = 0; // where the next output sample falls, in input samples since the last one kept
    this.previous = 0; // the last filtered input sample
    this.out = new Int16Array(BLOCK);
    this.filled = 0;
    this.stopped = false;
    this.port.onmessage = (e) => { if (e.data === "stop") this.flush(true); };
  }

  filter(x) {
    if (this.width === 1) return x;
    this.history[this.historyAt] = x;
    this.historyAt = (this.historyAt + 1) % this.width;
    let sum = 0;
    for (let i = 0; i < this.width; i++) sum += this.history[i];
    return sum / this.width;
  }

  push(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.out[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.filled === BLOCK) this.flush(false);
  }

  flush(last) {
    if (this.filled) {
      const block = this.out.slice(0, this.filled);
      this.port.postMessage(block.buffer, [block.buffer]);
      this.filled = 0;
    }
    if (last) {
      this.stopped = true;
      this.port.postMessage("stopped");
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const current = this.filter(channel[i]);
      // Output samples between the previous input sample (position 0) and this one (position 1).
      while (this.position <= 1) {
        this.push(this.previous + (current - this.previous) * this.position);
        this.position += this.ratio;
      }
      this.position -= 1;
      this.previous = current;
    }
    return true;
  }
}

registerProcessor("mic-capture", MicCapture);
