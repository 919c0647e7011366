"""The warm worker's requests: one JSON object per line, every field checked before anything runs.

A request is refused with a one-line reason (the worker answers ``{"event": "error"}`` and goes on) when
the line is too long, not JSON, nested too deeply, not an object, names an unknown command, or a field
has the wrong type or value: ``"overwrite": "false"`` is an error, not true. Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..contract import DEVICE_CHOICES, MAP_KINDS, METHODS, ConfidenceSegError

COMMANDS = ("predict", "cancel", "quit")
#: Longest request line read (characters) and longest path accepted.
MAX_LINE = 64 * 1024
MAX_PATH = 4096
MAX_SAMPLES = 1000


@dataclass(frozen=True)
class Request:
    """One checked request; ``job_id`` is the caller's (echoed in every answer), ``target`` a cancel's job."""

    command: str
    job_id: str | None = None
    input: str = ""
    out: str = ""
    method: str = "auto"
    samples: int | None = None
    device: str = "auto"
    maps: tuple[str, ...] | None = None
    overwrite: bool = False
    target: str | None = None


def _text(request: dict, key: str, required: bool = True) -> str | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_PATH:
        raise ConfidenceSegError(f"{key!r} must be a non-empty string of at most {MAX_PATH} characters")
    return value


def _choice(request: dict, key: str, choices, default: str) -> str:
    value = request.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise ConfidenceSegError(f"{key!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _identifier(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 128:
        raise ConfidenceSegError(f"a job id must be a string or an integer, got {value!r}")
    return str(value)


def parse_request(line: str) -> Request:
    """The checked request of one line (a one-line error for anything else)."""
    if len(line) > MAX_LINE:
        raise ConfidenceSegError(f"request line longer than {MAX_LINE} characters")
    try:
        request = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ConfidenceSegError(f"not a JSON request: {str(error)[:200]}") from None
    if not isinstance(request, dict):
        raise ConfidenceSegError("a request must be a JSON object")
    command = request.get("command")
    if command not in COMMANDS:
        raise ConfidenceSegError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    job_id = _identifier(request.get("id"))
    if command == "quit":
        return Request(command, job_id)
    if command == "cancel":
        return Request(command, job_id, target=_identifier(request.get("target")))
    samples, overwrite, maps = request.get("samples"), request.get("overwrite", False), request.get("maps")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)
                                or not 0 <= samples <= MAX_SAMPLES):
        raise ConfidenceSegError(f"'samples' must be null or an integer in 0..{MAX_SAMPLES}, got {samples!r}")
    if not isinstance(overwrite, bool):
        raise ConfidenceSegError(f"'overwrite' must be true or false, got {overwrite!r}")
    if maps is not None and (not isinstance(maps, list) or not all(isinstance(m, str) and m in MAP_KINDS
                                                                   for m in maps)):
        raise ConfidenceSegError(f"'maps' must be a list of {', '.join(MAP_KINDS)}, got {maps!r}")
    return Request(command, job_id, _text(request, "input"), _text(request, "out"),
                   _choice(request, "method", METHODS, "auto"), samples or None,
                   _choice(request, "device", DEVICE_CHOICES, "auto"), tuple(maps) if maps else None, overwrite)
