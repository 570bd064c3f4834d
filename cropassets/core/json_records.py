"""What the typed on-disk records share: a JSON object, its format version and its fields.

The week manifest (:mod:`cropassets.core.publish.manifest_record`), the week-model
record (:mod:`cropassets.core.week_model_record`) and the knee report
(:mod:`cropassets.core.knee_record`) read their files through these helpers,
so every refusal is a :class:`ValueError` that names the file (``source``) and what is
wrong with it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

VERSION_KEY = "format_version"
"""Key of a record's layout version. Layouts written before versions existed lack it and
read as version 1."""


def json_object(text: str | bytes, source: str, what: str) -> dict[str, Any]:
    """The JSON object in ``text`` (a file's content; ``source`` names the file).

    Raises:
        ValueError: Not JSON, or JSON that is not an object.
    """
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{source} is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{source} is not a {what}: it holds a JSON {type(doc).__name__}, "
                         "not an object")
    return doc


def checked_version(doc: Mapping[str, Any], source: str, what: str, current: int,
                    remedy: str) -> int:
    """The layout version of ``doc`` (1 without :data:`VERSION_KEY`), if it is ``current``.

    Raises:
        ValueError: Another version, naming it, the file and ``remedy``.
    """
    version = doc.get(VERSION_KEY, 1)
    if isinstance(version, bool) or version != current:
        raise ValueError(f"{source} has {what} format version {version!r}; this library reads "
                         f"version {current} ({remedy})")
    return current


def take_fields(doc: Any, source: str, where: str, required: Sequence[str],
                optional: Mapping[str, Any] | None = None,
                ignored: Sequence[str] = ()) -> dict[str, Any]:
    """The fields of one JSON object of a record: each required one, each optional one.

    Args:
        doc: The object (anything else is refused).
        source: The file, for errors.
        where: Which object of the file (``"the manifest"``, ``"tile T01"``...), for errors.
        required: Keys every layout of the record has written.
        optional: Key -> value when absent (keys added to the layout later: files written
            before hold none); the value is copied for each record.
        ignored: Keys allowed but not returned (e.g. :data:`VERSION_KEY`).

    Returns:
        Key -> value for every required and optional key.

    Raises:
        ValueError: ``doc`` is not an object, lacks a required key or has an unknown one
            (each named, with the file).
    """
    optional = optional or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: {where} is not a JSON object (got "
                         f"{type(doc).__name__})")
    missing = [k for k in required if k not in doc]
    if missing:
        raise ValueError(f"{source} lacks field(s) {missing} in {where}")
    known = {*required, *optional, *ignored}
    unknown = [k for k in doc if k not in known]
    if unknown:
        raise ValueError(f"{source} has unknown field(s) {unknown} in {where} (written by a "
                         "newer version of the library?)")
    return {k: doc[k] for k in required} | {
        k: doc[k] if k in doc else copy.deepcopy(v) for k, v in optional.items()}
