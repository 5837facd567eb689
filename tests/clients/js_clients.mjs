// The JavaScript clients, each making the calls it makes by default, against a running server.
// Run by tests/clients/test_clients.py with the Node.js 22 of this folder's node_modules:
//   node js_clients.mjs CASE BASE_URL AUDIO_DIR PCM24K_FILE
// BASE_URL is https:// (NODE_EXTRA_CA_CERTS names the server's ca.pem, as README tells users); one JSON line out.
import fs from "node:fs";
import path from "node:path";

import OpenAI, { toFile } from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { experimental_streamTranscribe, experimental_transcribe } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const [kase, baseURL, audioDir, pcmFile] = process.argv.slice(2);
const apiKey = "unused";
const audio = (name) => fs.createReadStream(path.join(audioDir, name));

const cases = {
  // OpenAI's JS SDK: json, verbose_json with words, a stream, the models list.
  async openai() {
    const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
    const json = await client.audio.transcriptions.create({ file: audio("beckett.wav"), model: "gpt-4o-transcribe" });
    const verbose = await client.audio.transcriptions.create({
      file: audio("beckett.wav"),
      model: "whisper-1",
      response_format: "verbose_json",
      timestamp_granularities: ["word", "segment"],
    });
    const stream = await client.audio.transcriptions.create({
      file: audio("beckett.wav"),
      model: "gpt-4o-mini-transcribe",
      stream: true,
    });
    const kinds = [];
    let done = "";
    for await (const event of stream) {
      kinds.push(event.type);
      if (event.type === "transcript.text.done") done = event.text;
    }
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    return { json: json.text, verbose: verbose.text, words: verbose.words.length, kinds, done, models };
  },

  // OpenAI's JS realtime client: it connects with wss:// only (the reason for TLS).
  async realtime() {
    const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey });
    const rt = new OpenAIRealtimeWS({ intent: "transcription" }, client);
    const pcm = fs.readFileSync(pcmFile);
    return await new Promise((resolve, reject) => {
      const events = [];
      const timer = setTimeout(() => reject(new Error(`no transcript; got ${events.join(",")}`)), 90000);
      rt.on("error", (error) => reject(error));
      rt.on("event", (event) => events.push(event.type));
      rt.on("conversation.item.input_audio_transcription.completed", (event) => {
        clearTimeout(timer);
        rt.close();
        resolve({ url: rt.url.toString(), transcript: event.transcript, events });
      });
      rt.socket.on("open", () => {
        rt.send({
          type: "session.update",
          session: {
            type: "transcription",
            audio: {
              input: {
                format: { type: "audio/pcm", rate: 24000 },
                transcription: { model: "gpt-realtime-whisper", delay: "low" },
                turn_detection: null,
              },
            },
          },
        });
        for (let i = 0; i < pcm.length; i += 48000) {
          rt.send({ type: "input_audio_buffer.append", audio: pcm.subarray(i, i + 48000).toString("base64") });
        }
        rt.send({ type: "input_audio_buffer.commit" });
      });
    });
  },

  // The Vercel AI SDK's transcription with the diarizing model (diarized_json, chunking_strategy=auto).
  async "ai-transcribe"() {
    const openai = createOpenAI({ baseURL: `${baseURL}/v1`, apiKey });
    const result = await experimental_transcribe({
      model: openai.transcription("gpt-4o-transcribe-diarize"),
      audio: fs.readFileSync(path.join(audioDir, "endgame_nagg_nell.wav")),
    });
    const speakers = result.providerMetadata?.openai?.segments ?? [];
    return {
      text: result.text,
      segments: result.segments.length,
      speakers: [...new Set(speakers.map((s) => s.speaker))],
      last: speakers.at(-1)?.text,
      duration: result.durationInSeconds,
    };
  },

  // The Vercel AI SDK's streaming transcription (its only streaming models: gpt-transcribe and the realtime ones).
  async "ai-stream"() {
    const openai = createOpenAI({ baseURL: `${baseURL}/v1`, apiKey });
    const pcm = fs.readFileSync(pcmFile);
    const audioStream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < pcm.length; i += 4800) controller.enqueue(new Uint8Array(pcm.subarray(i, i + 4800)));
        controller.close();
      },
    });
    const result = experimental_streamTranscribe({
      model: openai.transcription("gpt-transcribe"),
      audio: audioStream,
      inputAudioFormat: { type: "audio/pcm", rate: 24000 },
      providerOptions: { openai: { language: "en" } },
    });
    const parts = [];
    for await (const part of result.fullStream) parts.push(part.type);
    return { text: await result.text, parts, warnings: (await result.warnings).map((w) => w.feature) };
  },
};

const run = cases[kase];
if (!run) {
  console.error(`unknown case ${kase}; one of ${Object.keys(cases).join(", ")}`);
  process.exit(2);
}
run().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(error?.stack ?? String(error));
    process.exit(1);
  },
);
