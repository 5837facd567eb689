"""ISO 639-1 codes and the lower-case English names OpenAI puts in verbose_json: the one language table, used for
verbose_json, for error messages and for reading names a client sends as `language`.

`WHISPER_LANGUAGES` is Whisper's own table (what a multilingual Whisper model knows and detects); `LANGUAGES` adds
the languages only other models here know: Kyrgyz (GigaAM Multilingual), which Whisper has no token for.
"""

from __future__ import annotations

WHISPER_LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao",
    "uz": "uzbek", "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa",
    "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip
LANGUAGES: dict[str, str] = {**WHISPER_LANGUAGES, "ky": "kyrgyz"}

_NAMES = frozenset(LANGUAGES.values())
CODE_BY_NAME = {name: code for code, name in LANGUAGES.items()}


def language_name(code: str) -> str:
    """ "en" / "EN" / "en-US" -> "english"; a name passes through lower-cased; an unknown code is returned as is."""
    lowered = code.strip().lower()
    if lowered in _NAMES:
        return lowered
    base = lowered.replace("_", "-").split("-", 1)[0]
    return LANGUAGES.get(base, lowered)


def display_name(code: str) -> str:
    """ "en" -> "English" (for messages); an unknown code is returned as is."""
    return LANGUAGES[code].title() if code in LANGUAGES else code
