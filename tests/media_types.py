"""A strict Content-Type parser, as Go's `mime.ParseMediaType` and other strict clients read the header (RFC 9110
section 8.3.1: `type "/" subtype *( OWS ";" OWS parameter )`, parameter = token "=" ( token / quoted-string )).

It refuses what they refuse: a missing subtype, a bad token, a parameter without a value, and a parameter named
twice ("duplicate parameter name"), case-insensitively.
"""

from __future__ import annotations

import re

TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x09\x20-\x7e\x80-\xff])*"'
MEDIA_TYPE = re.compile(rf"(?P<type>{TOKEN})/(?P<subtype>{TOKEN})")
PARAMETER = re.compile(rf"[ \t]*;[ \t]*(?P<name>{TOKEN})=(?P<value>{TOKEN}|{QUOTED})")


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` in lower case and its parameters (names in lower case); ValueError when strict clients fail."""
    found = MEDIA_TYPE.match(value)
    if found is None:
        raise ValueError(f"no media type in {value!r}")
    params: dict[str, str] = {}
    position = found.end()
    while position < len(value.rstrip(" \t")):
        parameter = PARAMETER.match(value, position)
        if parameter is None:
            raise ValueError(f"invalid media parameter at {value[position:]!r}")
        name = parameter.group("name").lower()
        if name in params:
            raise ValueError(f"duplicate parameter name {name!r} in {value!r}")
        raw = parameter.group("value")
        params[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        position = parameter.end()
    return f"{found.group('type')}/{found.group('subtype')}".lower(), params
