"""What the ExampleGens read of a file outside the rows: bytes, byte ranges, headers, the survey.

Files are opened with Beam's filesystems (local, GCS, S3, HDFS). An interactions file is
cut into byte ranges that workers read in parallel; a first pass counts the newlines of
every range, so each row keeps the line an editor shows.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from models.data import errors, layouts, tables
from models.data.errors import DataError
from models.data.layouts import Table


def open_file(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def file_size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def header(table: Table) -> Optional[List[str]]:
    """The column names of a table with a header (read here: one line, not data).

    Raises:
      DataError: the file is missing, empty, or its first line is not in its encoding.
    """
    if not FileSystems.exists(table.path):
        raise DataError(f"{table.path}: file not found.")
    with open_file(table.path) as f:
        first = f.readline()
        rest = first + f.read(1 << 16) if not first.strip() else first
    if not rest.strip():
        raise DataError(f"{table.path}: the file is empty; it needs at least one data row.")
    tables.check_head(table.path, rest[:4], table.spec.encoding)
    if not table.spec.header:
        return None
    text = decode(table.path, first, 1, 0, table.spec.encoding).lstrip("\ufeff")
    return table.spec.split_line(text.rstrip("\r\n"))


def survey(folder: str) -> Dict[str, object]:
    """What a run can know of ``folder`` without reading its rows: the layout, each file's size
    and header (a missing file or column stops here), the side tables it lacks ('users',
    'items': their rows then come from the interactions, with unknown features), and the
    catalogue size (the items file's non-blank lines, counted when the file is at most 16 MB;
    None without one or above that, where no list length comes near it).

    Raises:
      DataError: no known layout, a required file missing or empty, a required column missing.
    """
    layout = layouts.detect(folder)
    found = layouts.tables_of(folder, layout)
    sizes = {}
    for table in found.values():
        if table.present:
            tables.RowParser(table.path, table.spec, header(table))
            sizes[table.path] = file_size(table.path)
    items = found[layouts.ITEMS]
    count = None
    if items.present and sizes[items.path] <= 16 << 20:
        count = 0
        with open_file(items.path) as f:
            for line in f:
                count += bool(line.strip())
        count -= int(items.spec.header)
    absent = [name for name in (layouts.USERS, layouts.ITEMS) if not found[name].present]
    return {"layout": layout, "sizes": sizes, "items": count, "absent": absent}


def decode(path: str, raw: bytes, line: int, offset: int, encoding: str) -> str:
    if offset == 0:
        tables.check_head(path, raw[:4], encoding)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise errors.decode_error(path, line, offset + e.start, raw[e.start], encoding) from None


def ranges(path: str, whole: bool, range_bytes: int) -> List[Tuple[int, int]]:
    size = file_size(path)
    if whole or size <= range_bytes:
        return [(0, size)]
    return [(start, min(start + range_bytes, size)) for start in range(0, size, range_bytes)]


def count_newlines(span: Tuple[int, int], path: str) -> Tuple[int, int]:
    start, end = span
    count, position = 0, start
    with open_file(path) as f:
        f.seek(start)
        while position < end:
            block = f.read(min(8 << 20, end - position))
            if not block:
                break
            count += block.count(b"\n")
            position += len(block)
    return start, count
