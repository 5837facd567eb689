"""Self-hosted, OpenAI-compatible speech-to-text appliance.

Importing the package turns third-party telemetry off before any library that carries it can load: every entry
point (the server, `python -m app download`, tests, benchmarks) imports `app` first. onnxruntime's official wheels
send 1DS telemetry on Linux by default (a device id and an event database under ~/.cache/Microsoft, a `.ses` file in
$TMPDIR); `ORT_DISABLE_TELEMETRY=1` before it initialises is the full opt-out. These are forced, not defaulted: a
private appliance has no switch for phoning home.
"""

import os

TELEMETRY_OPT_OUTS = {"ORT_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
os.environ.update(TELEMETRY_OPT_OUTS)

VERSION = "0.1.0"  # the OpenAPI document's and the Wyoming program's version
