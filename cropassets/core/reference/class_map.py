"""Class maps of a label import, and the error type of every label-file problem.

A class map takes a raw class value of the user's file (as str) to a (class code, class
name) pair: codes are ints in 1..254 (255 is the crop map's nodata); several raw values may
share a code (merging classes) if they give it the same name. :func:`load_class_map` reads
one from JSON; :func:`_checked_class_map` validates any mapping the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.core.legend import CLASS_NODATA

MAX_CLASS_CODE = CLASS_NODATA - 1
"""Largest class code (254): crop maps are uint8 with 255 as nodata."""


class LabelFileError(ValueError):
    """A label file, class map or import request that cannot be used (message says why)."""


class ClassMap(dict[str, tuple[int, str]]):
    """Raw class value (as str) -> (class code, class name), remembering its file.

    A plain ``dict`` works wherever a class map is expected; this subclass only lets error
    messages name the file the map came from (see :func:`load_class_map`).
    """

    def __init__(self, entries: dict[str, tuple[int, str]], source: Path | None = None):
        super().__init__(entries)
        self.source = source


def load_class_map(path: Path) -> dict[str, tuple[int, str]]:
    """Read a class map JSON file: raw class value -> (class code, class name).

    Format: ``{"<raw value>": {"code": 1, "name": "maize"}, ...}``. Several raw values may
    share a code (merging classes) if they give it the same name.

    Args:
        path: The JSON file.

    Returns:
        A :class:`ClassMap` (a dict) that remembers ``path`` for error messages.

    Raises:
        LabelFileError: If the file is missing or not JSON, or an entry has no name, a code
            that is not an int in 1..254, or a code/name that conflicts with another entry.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelFileError(f"class map {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelFileError(f"class map {path} is not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or not doc:
        raise LabelFileError(
            f"class map {path} must be a non-empty JSON object "
            '{"<raw value>": {"code": 1, "name": "maize"}, ...}')
    entries: dict[str, tuple[Any, Any]] = {}
    for raw, entry in doc.items():
        where = f"class map {path}, entry {raw!r}"
        if not isinstance(entry, dict):
            raise LabelFileError(
                f'{where}: expected {{"code": <int>, "name": <str>}}, got {entry!r}')
        if "name" not in entry:
            raise LabelFileError(f"{where}: name missing")
        entries[str(raw)] = (entry.get("code"), entry["name"])
    return ClassMap(_checked_class_map(entries, f"class map {path}"), source=path)


def _checked_class_map(cmap: dict[Any, Any], what: str) -> dict[str, tuple[int, str]]:
    """Validate a class map (codes, names, consistency); return it with str keys."""
    out: dict[str, tuple[int, str]] = {}
    name_of: dict[int, tuple[str, str]] = {}  # code -> (name, raw value)
    code_of: dict[str, tuple[int, str]] = {}  # name -> (code, raw value)
    for raw, value in cmap.items():
        where = f"{what}, entry {str(raw)!r}"
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise LabelFileError(f"{where}: expected (code, name), got {value!r}")
        code, name = value
        if isinstance(code, bool) or not isinstance(code, int | np.integer):
            raise LabelFileError(f"{where}: code must be an int in 1..{MAX_CLASS_CODE}, "
                                 f"got {code!r}")
        code = int(code)
        if not 1 <= code <= MAX_CLASS_CODE:
            raise LabelFileError(f"{where}: code {code} is outside 1..{MAX_CLASS_CODE} "
                                 f"({CLASS_NODATA} is the crop map's nodata)")
        if not isinstance(name, str) or not name.strip():
            raise LabelFileError(f"{where}: name must be a non-empty string, got {name!r}")
        if code in name_of and name_of[code][0] != name:
            other_name, other_raw = name_of[code]
            raise LabelFileError(f"{where}: code {code} is named {name!r} here but "
                                 f"{other_name!r} in entry {other_raw!r}")
        if name in code_of and code_of[name][0] != code:
            other_code, other_raw = code_of[name]
            raise LabelFileError(f"{where}: name {name!r} has code {code} here but "
                                 f"{other_code} in entry {other_raw!r}")
        name_of[code] = (name, str(raw))
        code_of[name] = (code, str(raw))
        out[str(raw)] = (code, name)
    return out


def _class_map_name(cmap: dict[str, tuple[int, str]]) -> str:
    source = getattr(cmap, "source", None)
    return f"class map {source}" if source is not None else "the class map of LabelSource"
