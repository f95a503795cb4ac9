"""Codes a cell names: a country, product or period code, a bloc or group name, `*`,
or several of these separated by commas. One place expands them for every sheet."""

from __future__ import annotations


def expand(text: str | None, members: dict[str, list[str]], everything: list[str]) -> list[str]:
    """The codes a cell names, each once, in the order named: `*` is everything, a bloc or
    group name its members, any other code itself."""
    out: list[str] = []
    for code in str(text or "").split(","):
        code = code.strip()
        if code:
            out += everything if code == "*" else members.get(code, [code])
    return list(dict.fromkeys(out))


def periods_in(text: str | None, periods: list[str]) -> list[str]:
    """The periods a `periods` cell names (blank or `*`: all of them), in model order."""
    named = set(expand(text or "*", {}, periods))
    return [p for p in periods if p in named]


def split_codes(text) -> list[str]:
    """The codes of a list cell ('defence, ev' or 'defence; ev'), each once, in order."""
    if text is None or text != text:
        return []
    return list(dict.fromkeys(c.strip() for c in str(text).replace(";", ",").split(",") if c.strip()))
