"""The console under an ASCII locale (``LC_ALL=C`` with Python's UTF-8 mode off, some CI runners and
Windows code pages): the command's lines must still print, not end in a ``UnicodeEncodeError`` after
the outputs were written.

Units and signs the product prints (``mm³``, ``±``, ``≥``) get their ASCII spelling; any other character
that the console cannot show is written as a Python escape (``\\xfc``; a name's undecodable bytes as
``\\xc3``), so that a file name stays recognisable.
"""

from __future__ import annotations

import codecs
import sys

#: Characters of the product's own text and their ASCII spelling.
ASCII_SPELLING = {"³": "3", "²": "2", "±": "+/-", "≥": ">=", "≤": "<=", "×": "x", "µ": "u", "–": "-", "—": "-",
                  "…": "...", "→": "->", "·": "."}
ERROR_HANDLER = "confidenceseg-ascii"


def spell_in_ascii(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the ASCII spelling of the characters the console cannot encode."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    return "".join(ASCII_SPELLING.get(char) or escaped(char) for char in text), error.end


def escaped(char: str) -> str:
    """``\\xfc`` for a character; ``\\xc3`` for a byte that the locale could not decode (a lone surrogate)."""
    if 0xDC80 <= ord(char) <= 0xDCFF:
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("ascii", "backslashreplace").decode()


def make_console_safe() -> None:
    """Let stdout and stderr replace what their encoding cannot show, instead of raising."""
    codecs.register_error(ERROR_HANDLER, spell_in_ascii)
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "".join(ASCII_SPELLING).encode(encoding)
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors=ERROR_HANDLER)
