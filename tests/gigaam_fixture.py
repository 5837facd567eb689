"""Session-scoped pytest fixture: a tiny random-weight GigaAM v3 CTC model (fp32 + int8) in a models folder.

Import it into a conftest (`from tests.gigaam_fixture import tiny_gigaam_models_dir`) or a test module. The model
has the real v3 architecture, exported in the layout onnx-asr loads, so `load_gigaam("v3_ctc", models_dir=...)`
runs the exact path users take. Its text is gibberish; its structure is real. Builds in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_gigaam_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.gigaam_build import write_model_dir

    models_dir = tmp_path_factory.mktemp("gigaam-models")
    write_model_dir(models_dir / "v3_ctc", version="v3", size="tiny", int8=True)
    return models_dir
