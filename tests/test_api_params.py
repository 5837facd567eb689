"""Request parsing of both dialects (app/api/params.py), pure: Reflector's upload plan, flags and numbers."""

from __future__ import annotations

import pytest

from app.api.params import finite, is_reflector_form, parse_bool, parse_number, plan_upload
from app.errors import InvalidInput


def test_form_detection() -> None:
    assert is_reflector_form([], ["files"])
    assert is_reflector_form([], ["files[]"])
    assert is_reflector_form(["batch"], ["file"])
    assert not is_reflector_form(["language", "model"], ["file"])
    assert not is_reflector_form(["response_format"], [])


def test_single_file() -> None:
    plan = plan_upload({"language": ["en"]}, ["file"])
    assert plan.file_indices == (0,) and not plan.multiple and plan.model is None


def test_many_files_and_batch() -> None:
    plan = plan_upload({"batch": ["true"], "model": ["whisper-1"]}, ["files", "files[]"])
    assert plan.file_indices == (0, 1) and plan.multiple and plan.model == "whisper-1"
    assert plan_upload({}, ["files", "files"]).multiple
    one = plan_upload({"batch": ["false"]}, ["files"])
    assert one.file_indices == (0,) and not one.multiple
    assert plan_upload({"batch": ["true"]}, ["files"]).multiple


@pytest.mark.parametrize(
    ("fields", "files", "match"),
    [
        ({}, [], "Missing"),
        ({"batch": ["true"]}, [], "Missing"),
        ({}, ["file", "files"], "not both"),
        ({"batch": ["true"]}, ["file"], "requires 'files'"),
        ({"batch": ["maybe"]}, ["files"], "batch"),
        ({}, ["file", "file"], "one 'file'"),
    ],
)
def test_bad_uploads(fields: dict[str, list[str]], files: list[str], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_upload(fields, files)


@pytest.mark.parametrize(("raw", "value"), [(None, False), ("", False), ("true", True), ("ON", True), ("0", False)])
def test_flags(raw: str | None, value: bool) -> None:
    assert parse_bool(raw, "stream") is value


def test_a_bad_flag_names_its_parameter() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_bool("maybe", "stream")
    assert info.value.about == "stream"


def test_numbers() -> None:
    assert parse_number(None, "timestamp") == 0.0
    assert parse_number(" 12.5 ", "timestamp") == 12.5
    for bad in ("soon", "nan", "inf"):
        with pytest.raises(InvalidInput) as info:
            parse_number(bad, "timestamp")
        assert info.value.about == "timestamp"
    with pytest.raises(InvalidInput):
        finite(float("nan"), "timestamp_offset")
