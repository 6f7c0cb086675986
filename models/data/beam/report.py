"""The validation report: bad rows, row counts, fatal problems and the time range of a read.

The pipeline writes one small JSON report; the executor reads it after the pipeline
(``check``): over the bad-row budget, the run stops with file, line and field, in the words of
the in-memory reader (``models.data.errors``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from models.data import errors
from models.data.beam import files, rows
from models.data.errors import BadRow, DataError, ValidationReport


@dataclasses.dataclass
class Problems:
    """Every table's bad rows, fatal problems and row counts, and the interactions' time range."""

    bad: List[beam.PCollection]
    fatal: List[beam.PCollection]
    totals: List[beam.PCollection]
    times: Optional[beam.PCollection] = None
    paths: Sequence[str] = ()


def collect(problems: Problems, read: rows.Read) -> None:
    problems.bad.append(read.bad)
    problems.fatal.append(read.fatal)
    problems.totals.append(read.total)


class TimeRange(beam.CombineFn):
    """(min, max, count) of int values: the interactions' time range, for the report."""

    def create_accumulator(self):
        return (None, None, 0)

    def add_input(self, acc, value):
        low, high, n = acc
        return (value if low is None else min(low, value), value if high is None else max(high, value),
                n + 1)

    def merge_accumulators(self, accs):
        out = (None, None, 0)
        for low, high, n in accs:
            if n:
                out = (low if out[0] is None else min(out[0], low),
                       high if out[1] is None else max(out[1], high), out[2] + n)
        return out

    def extract_output(self, acc):
        return acc


# --- the validation report ---------------------------------------------------------------

_LISTED = 10


def write_report(pipeline, problems: Problems, path: str) -> None:
    """Adds the writing of the validation report (JSON at ``path``): per file the rows read,
    the count of bad rows and the first of them by line; fatal problems; the time range."""
    label = "Report"
    bad = (problems.bad | f"{label}Bad" >> beam.Flatten()
           | f"{label}ByFile" >> beam.Map(lambda b: (b.path, b)))
    counts = bad | f"{label}CountBad" >> beam.combiners.Count.PerKey()
    first = bad | f"{label}FirstBad" >> beam.combiners.Top.PerKey(
        _LISTED, key=lambda b: -b.line)
    totals = problems.totals | f"{label}Totals" >> beam.Flatten()
    fatal = problems.fatal | f"{label}Fatal" >> beam.Flatten()
    side = dict(counts=beam.pvalue.AsDict(counts), first=beam.pvalue.AsDict(first),
                totals=beam.pvalue.AsDict(totals), fatal=beam.pvalue.AsList(fatal))
    if problems.times is not None:
        side["times"] = beam.pvalue.AsSingleton(problems.times)
    _ = (pipeline
         | f"{label}Start" >> beam.Create([path])
         | f"{label}Write" >> beam.Map(_write_report, paths=list(problems.paths), **side))


def _write_report(path, paths, counts, first, totals, fatal, times=None):
    report = {
        "files": [{"path": p, "rows": int(totals.get(p, 0)), "bad": int(counts.get(p, 0)),
                   "first_bad": [dataclasses.asdict(b) for b in sorted(first.get(p, []),
                                                                       key=lambda b: b.line)]}
                  for p in paths],
        "fatal": sorted(fatal),
        "times": list(times) if times is not None else None,
    }
    with FileSystems.create(path) as f:
        f.write(json.dumps(report, indent=1).encode("utf-8"))
    return path


def check(path: str, max_bad_fraction: float) -> ValidationReport:
    """Reads the validation report the pipeline wrote.

    Returns:
      The report (rows read, skipped rows, warnings), for the log.

    Raises:
      DataError: a fatal problem, a file without data rows, or more bad rows than allowed; the
        message names file, line and field, as the in-memory reader's.
    """
    with files.open_file(path) as f:
        report = json.loads(f.read().decode("utf-8"))
    if report["fatal"]:
        raise DataError(report["fatal"][0])
    out = ValidationReport()
    for entry in report["files"]:
        if entry["rows"] == 0:
            raise DataError(errors.no_rows(entry["path"]))
        listed = [BadRow(**b) for b in entry["first_bad"]]
        message = errors.over_budget(entry["path"], listed, entry["bad"], entry["rows"],
                                     max_bad_fraction)
        if message:
            raise DataError(message)
        out.rows_read[entry["path"]] = entry["rows"]
        out.skipped.extend(listed)
        out.unlisted += entry["bad"] - len(listed)
    if report["times"] and report["times"][2]:
        low, high, n = report["times"]
        out.warnings.extend(errors.time_warnings(low, high, n))
    return out
