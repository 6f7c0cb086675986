"""The ExampleGens' reading as Beam transforms: nothing of the data passes through the driver.

One module per role:
  files      bytes, byte ranges and headers of a file; ``survey`` of a folder before a run.
  rows       a table read in byte ranges and parsed where it lies; side tables deduplicated.
  timelines  interactions joined to their item and user, split by time, made into examples;
             the catalogue.
  report     bad rows, row counts, fatal problems and the time range, written as one report
             and checked against the bad-row budget after the pipeline.
Every row is judged and every problem worded as the in-memory reader (``models.data.readers``)
does: the same ``tables.RowParser``, ``splits.held_out`` and ``models.data.errors``.
"""

from models.data.beam.files import header, survey
from models.data.beam.report import Problems, check, write_report
from models.data.beam.rows import Read, read_table, unique_rows
from models.data.beam.timelines import Interactions, catalogue, interactions

__all__ = ["Interactions", "Problems", "Read", "catalogue", "check", "header", "interactions",
           "read_table", "survey", "unique_rows", "write_report"]
