// The transcription page: ES modules, no framework, nothing loaded from elsewhere (the CSP allows only this
// server's scripts). One module per concern: dom (elements, status), sse (the event parser), subtitles (the port of
// app/render/subtitles.py), result (the panel), models (the menu and the key), file-job, dictation, downloads, jobs
// (files left with the server: their list) and reader (a finished job's transcript beside its audio).

import { setUpDictation } from "./dictation.js";
import { setUpDownloads } from "./downloads.js";
import { setUpFileJob } from "./file-job.js";
import { setUpJobs } from "./jobs.js";
import { loadModels, setUpKey } from "./models.js";
import { setUpReader } from "./reader.js";
import { setUpResult } from "./result.js";

setUpFileJob();
setUpKey();
setUpResult();
setUpDictation();
setUpDownloads();
setUpReader();
setUpJobs();
loadModels();
