"""Configuration sections: how each one travels into a component and is read back.

Each section is a frozen dataclass beside the code that reads it
(``models/data/config.py``, ``models/retrieval/config.py``, ...);
``pipeline/config.py`` composes them into ``PipelineConfig`` and validates the
whole once, when the pipeline is created. A section travels into a component
in one encoding, the JSON object of its fields: custom components take the
text (``encode``), TFX's Trainer takes the fields as ``custom_config`` and
writes the same JSON itself. Either way ML Metadata records every value with
the run. ``decode`` is the one function that reads a section back.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable, Mapping, Tuple, Type, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


def check(checks: Iterable[Tuple[bool, str]]) -> None:
    """Raises ConfigError with the message of the first failed (ok, message) check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"Invalid configuration: {message}")


def fields(section) -> dict:
    """The section's fields as plain values (what TFX's Trainer takes as ``custom_config``)."""
    return dataclasses.asdict(section)


def encode(section) -> str:
    """The section as the JSON object of its fields (a component's execution parameter)."""
    return json.dumps(fields(section), sort_keys=True)


def decode(cls: Type[T], value: Union[str, Mapping[str, Any], None]) -> T:
    """Reads section ``cls`` back from its JSON text or the dict parsed from it.

    Lists (JSON has no tuples) become tuples again; missing fields take their
    defaults (an older run's record, or a run parameter naming a few fields); the
    section is validated again (a run parameter can set any value).

    Raises:
      ConfigError: a key is not a field of ``cls``, or a value is out of range.
    """
    values = dict((json.loads(value) if isinstance(value, str) else value) or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(names)}")
    section = cls(**{key: tuple(value) if isinstance(value, list) else value
                     for key, value in values.items()})
    if hasattr(section, "validate"):
        section.validate()
    return section
