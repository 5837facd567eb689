"""Session-scoped pytest fixtures: tiny random-weight GigaAM models (fp32 + int8) in a models folder.

Import one into a conftest or a test module (`from tests.gigaam_fixture import tiny_gigaam_models_dir`). The models
have the real architecture, exported in the layout onnx-asr loads, so `load_gigaam("v3_ctc", models_dir=...)` runs
the exact path users take. Their text is gibberish; their structure is real. Each builds in a few seconds.

- `tiny_gigaam_models_dir`: `v3_ctc`.
- `tiny_multilingual_models_dir`: `multilingual_ctc` and `multilingual_large_ctc` under the published file names
  (the large one's fp32 weights in `multilingual_large_ctc.onnx.data`), traced as the published ones were.
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


@pytest.fixture(scope="session")
def tiny_multilingual_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.gigaam_build import write_model_dir

    models_dir = tmp_path_factory.mktemp("multilingual-models")
    for revision in ("ctc", "large_ctc"):
        write_model_dir(
            models_dir / f"multilingual_{revision}", version="multilingual", size="tiny", int8=True, revision=revision
        )
    return models_dir
