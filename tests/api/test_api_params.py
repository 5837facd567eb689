"""Request parsing of both dialects (app/api/params.py), pure: Reflector's upload plan, flags and numbers."""

from __future__ import annotations

import pytest

from app.api.forms import Form
from app.api.params import (
    MAX_NAME_CHARS,
    SPEAKER_NAME,
    TranscriptionFields,
    form_fields,
    parse_bool,
    parse_known_speakers,
    parse_options,
    transcription_request,
)
from app.api.reflector_params import finite, is_reflector_form, language_code, plan_upload
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


def test_numbers() -> None:  # /diarize's `timestamp` is a typed parameter: tests/api/test_api_inprocess.py
    assert finite(12.5, "timestamp_offset") == 12.5
    for bad in ("nan", "inf", "-inf"):
        with pytest.raises(InvalidInput) as info:
            finite(float(bad), "timestamp_offset")
        assert info.value.about == "timestamp_offset"


def _form(fields: dict[str, list[str]]) -> Form:
    form = Form()  # its folder is made with its first file part: none here
    form.fields = fields
    return form


def test_an_empty_list_field_is_no_item() -> None:
    """Swagger UI's "Try it out" (like HTML forms) sends an empty list as one empty field: that is no item."""
    form = _form({"timestamp_granularities[]": [""], "known_speaker_names[]": [""], "keywords[]": [""]})
    fields = form_fields(form, TranscriptionFields)
    options = parse_options(fields, "verbose_json")
    assert (options.words, options.segments) == (False, True)  # as if none was sent
    assert parse_known_speakers(form, fields) is None
    assert transcription_request(form, fields, "transcribe", options).keywords == ()


def test_fields_convert_into_their_types_and_refusals_name_the_field() -> None:
    form = _form({"temperature": ["0.5"], "stream": ["yes"], "timestamp_granularities": ["word"]})
    fields = form_fields(form, TranscriptionFields)
    assert (fields.temperature, fields.stream, fields.timestamp_granularities) == (0.5, True, ["word"])
    for name, value in [("temperature", "2"), ("response_format", "docx"), ("stream", "maybe")]:
        with pytest.raises(InvalidInput) as caught:
            form_fields(_form({name: [value]}), TranscriptionFields)
        assert caught.value.about == name


def known(names: list[str]):  # type: ignore[no-untyped-def]
    form = _form({"known_speaker_names[]": names})
    return parse_known_speakers(form, form_fields(form, TranscriptionFields))


@pytest.mark.parametrize("name", ["Alice", " Bob ", "Zoë Ω", "a" * MAX_NAME_CHARS])
def test_speaker_names_the_contract_allows_are_taken(name: str) -> None:
    assert SPEAKER_NAME.fullmatch(name)
    speakers = known([name])
    assert speakers is not None and speakers.names == (name.strip(),)


@pytest.mark.parametrize("name", [" ", "\t", "a\nb", "x\x00", "\x85", "a" * (MAX_NAME_CHARS + 1)])
def test_speaker_names_the_contract_refuses_are_refused(name: str) -> None:
    assert len(name) > MAX_NAME_CHARS or not SPEAKER_NAME.fullmatch(name)
    with pytest.raises(InvalidInput, match="known_speaker_names"):
        known([name])


@pytest.mark.parametrize("code", ["en", " EN ", "deu"])
def test_language_codes(code: str) -> None:
    assert language_code(code, "source_language") == code.strip().lower()


@pytest.mark.parametrize("code", ["", "e", "english", "e1", "en-US"])
def test_bad_language_codes_name_their_parameter(code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        language_code(code, "target_language")
    assert caught.value.about == "target_language"
