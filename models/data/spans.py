"""Dated spans: a data folder whose subfolders each hold one span of the data, and the window of
spans a run reads.

A folder holds spans when subfolders match ``DataConfig.span_pattern`` (TFX's span syntax:
``{SPAN}``, ``{SPAN:8}`` zero-padded, or the date specs ``{YYYY}{MM}{DD}``, whose span number is
the day since 1970-01-01 as in TFX), e.g. ``span-20261201/``; each span is a folder in any
supported layout. A run reads the latest ``DataConfig.spans`` of them (0: every span), oldest
first; the ExampleGens join them as one dataset (a user's timeline runs across spans; an item or
user listed in several spans takes the newest span's row) and record the window on their output
(``record``). A folder without such subfolders is one dataset, as before.

The window is chosen when the ExampleGen runs, not when the pipeline is built: a scheduled run
(``recsys submit --schedule``) reads the spans that exist at its tick. Spans are taken as
immutable, as TFX does: new data arrives as a new span folder, so a run with ``--cache`` sees a new
input when a span folder appears or changes its entries.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from typing import List, Optional, Tuple

from models.data.errors import DataError

SPAN_SPEC = "{SPAN}"
DATE_SPECS = ("{YYYY}", "{MM}", "{DD}")
_SPAN_SPEC = re.compile(r"\{SPAN(?::(\d+))?\}")
_EPOCH = datetime.date(1970, 1, 1)


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    name: str  # the subfolder's name
    path: str


def check_pattern(pattern: str) -> Optional[str]:
    """What is wrong with a span pattern, or None: one {SPAN} (or {SPAN:N}), or each date spec
    once, and no path separator."""
    spans = _SPAN_SPEC.findall(pattern)
    dates = [pattern.count(spec) for spec in DATE_SPECS]
    if "/" in pattern:
        return "data.span_pattern names one subfolder level: no '/'"
    if spans and any(dates):
        return "data.span_pattern holds either {SPAN} or the date specs {YYYY}{MM}{DD}, not both"
    if len(spans) > 1:
        return "data.span_pattern holds {SPAN} once"
    if not spans and dates != [1, 1, 1]:
        return "data.span_pattern needs {SPAN} or each of {YYYY}, {MM}, {DD} once (TFX's span specs)"
    return None


def _regex(pattern: str) -> re.Pattern:
    out, position = [], 0
    tokens = re.compile(r"\{SPAN(?::\d+)?\}|\{YYYY\}|\{MM\}|\{DD\}")
    for match in tokens.finditer(pattern):
        out.append(re.escape(pattern[position:match.start()]).replace(r"\*", "[^/]*"))
        token = match.group(0)
        width = _SPAN_SPEC.fullmatch(token)
        if width:
            out.append(rf"(?P<span>\d{{{width.group(1)}}})" if width.group(1) else r"(?P<span>\d+)")
        else:
            name, digits = {"{YYYY}": ("year", 4), "{MM}": ("month", 2), "{DD}": ("day", 2)}[token]
            out.append(rf"(?P<{name}>\d{{{digits}}})")
        position = match.end()
    out.append(re.escape(pattern[position:]).replace(r"\*", "[^/]*"))
    return re.compile("".join(out))


def _number(match: re.Match, name: str, folder: str) -> int:
    if "span" in match.groupdict():
        return int(match.group("span"))
    try:
        day = datetime.date(int(match.group("year")), int(match.group("month")), int(match.group("day")))
    except ValueError:
        raise DataError(f"{os.path.join(folder, name)}: not a calendar date; span folders named "
                        f"by date need a real year, month and day") from None
    return (day - _EPOCH).days


def _gfile():
    import tensorflow as tf  # local and object-store folders alike; not needed to check a pattern

    return tf.io.gfile


def find(folder: str, pattern: str) -> List[Span]:
    """The span subfolders of ``folder``, oldest first; [] when it holds none.

    Raises:
      DataError: two subfolders with the same span number, or a date that is not one.
    """
    gfile = _gfile()
    if not gfile.isdir(folder):
        return []
    regex = _regex(pattern)
    found = {}
    for entry in gfile.listdir(folder):
        name = entry.rstrip("/")
        match = regex.fullmatch(name)
        path = os.path.join(folder, name)
        if match is None or not gfile.isdir(path):
            continue
        number = _number(match, name, folder)
        if number in found:
            first, second = sorted([found[number].name, name])
            raise DataError(f"{folder}: span folders {first} and {second} are the same span "
                            f"({number}); keep one")
        found[number] = Span(number, name, path)
    return [found[n] for n in sorted(found)]


def window(folder: str, pattern: str, count: int) -> List[Span]:
    """The spans a run reads: the latest ``count`` of ``folder``'s (0: all), oldest first; [] when
    the folder holds no span subfolders (it is then one dataset). ``choose`` also counts them all.

    Raises:
      DataError: a folder that holds both span subfolders and data files of its own, or span
        folders none of which holds a file.
    """
    return choose(folder, pattern, count)[0]


def choose(folder: str, pattern: str, count: int) -> Tuple[List[Span], int]:
    """(``window``'s spans, how many span folders ``folder`` holds), from one listing.

    Raises:
      DataError: as ``window``.
    """
    spans = find(folder, pattern)
    if not spans:
        if count:
            raise DataError(f"{folder}: no span folders named like {pattern!r}, so a window of the "
                            f"latest {count} span(s) (--spans) cannot be read; name each span's "
                            f"folder so (e.g. {pattern.replace('{SPAN}', '20261201')}) or leave "
                            f"--spans out to read the folder whole")
        return [], 0
    gfile = _gfile()
    loose = sorted(name for name in gfile.listdir(folder)
                   if not gfile.isdir(os.path.join(folder, name))
                   and name.lower().endswith((".csv", ".dat", ".data", ".item", ".user")))
    if loose:
        raise DataError(f"{folder}: holds span folders ({spans[0].name} ... {spans[-1].name}) and "
                        f"data files of its own ({', '.join(loose[:3])}); move the files into a "
                        f"span folder, or point --data at one span")
    return (spans[-count:] if count else spans), len(spans)


def describe(spans: List[Span], total: int) -> str:
    """'3 of 5 spans: span-20261203 .. span-20261205'."""
    names = spans[0].name if len(spans) == 1 else f"{spans[0].name} .. {spans[-1].name}"
    return f"{len(spans)} of {total} span{'s' if total != 1 else ''}: {names}"


# Custom properties of an ExampleGen's output that name its window.
SPAN_FIRST, SPAN_LAST, SPAN_NAMES = "span_first", "span_last", "span_names"


def record(artifact, spans: List[Span]) -> None:
    """Writes the window onto an Examples artifact: TFX's ``span`` property is the newest span's
    number (what span-aware TFX tooling reads), the custom properties the whole range."""
    artifact.span = spans[-1].number
    artifact.set_int_custom_property(SPAN_FIRST, spans[0].number)
    artifact.set_int_custom_property(SPAN_LAST, spans[-1].number)
    artifact.set_string_custom_property(SPAN_NAMES, ",".join(s.name for s in spans))
