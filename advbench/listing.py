"""Listings (`advbench models`, `advbench runs`) that fit a terminal and a pipe.

- On a terminal: a rich table that fits its width. Columns are dropped, least useful first,
  until the rest fit whole (a name is never cut: it is copied into commands); `--wide` keeps
  every column and lets the table fold.
- In a pipe (stdout not a terminal): plain tab-separated lines with a header, every column,
  so `advbench runs | grep complete` and `cut -f` work.
- `--format csv|json`: every column, raw values (full ids and checksums, numbers as
  numbers), as sqlite-utils' `rows` prints them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from advbench import formats

FORMATS = formats.LISTING


@dataclass
class Column:
    key: str
    header: str
    text: Callable[[dict], str]  # the cell as shown in a table or a pipe
    drop: int = 0  # dropped first when the table is too wide: highest first; 0 never


def check_format(fmt: str) -> None:
    from advbench.errors import unknown

    if fmt not in FORMATS:
        raise unknown("format", fmt, FORMATS)


def render(console, title: str, columns: list[Column], rows: list[dict[str, Any]], *,
           fmt: str = "table", wide: bool = False, note: str = "") -> None:  # fmt: skip
    """Print `rows` (raw values keyed by column key) in the format asked for."""
    check_format(fmt)
    write = console.file.write
    if fmt == "json":
        write(json.dumps([{c.key: r[c.key] for c in columns} for r in rows], indent=1) + "\n")
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([c.key for c in columns])
        w.writerows([[r[c.key] for c in columns] for r in rows])
        write(buf.getvalue())
        return
    cells = [[c.text(r) for c in columns] for r in rows]
    if not console.is_terminal:
        write("\t".join(c.header for c in columns) + "\n")
        for line in cells:
            write("\t".join(x.replace("\t", " ") for x in line) + "\n")
        return
    keep = list(range(len(columns))) if wide else fit(columns, cells, console.width)
    dropped = [columns[i].header for i in range(len(columns)) if i not in keep]
    from rich.table import Table

    table = Table(title=title, caption=_caption(note, dropped), caption_justify="left")
    for i in keep:
        table.add_column(columns[i].header, no_wrap=not wide, overflow="fold")
    for line in cells:
        table.add_row(*[line[i] for i in keep])
    console.print(table)


def _caption(note: str, dropped: list[str]) -> str | None:
    parts = [note] if note else []
    if dropped:
        parts.append(f"not shown at this width: {', '.join(dropped)} (--wide, or --format csv)")
    return "; ".join(parts) or None


def width(columns_cells: list[list[str]], headers: list[str]) -> int:
    """A rich table's width with the default box: the widest cell per column, 1 space of
    padding each side and a border between and around the columns."""
    pairs = zip(headers, columns_cells, strict=True)
    widths = [max([len(h), *(len(c) for c in col)]) for h, col in pairs]
    return sum(widths) + 3 * len(widths) + 1


def fit(columns: list[Column], cells: list[list[str]], limit: int) -> list[int]:
    """Indices of the columns kept: drop the highest `drop` first until the table fits."""
    keep = list(range(len(columns)))
    order = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    for i in [None, *order]:
        if i is not None:
            keep.remove(i)
        cols = [[line[j] for line in cells] for j in keep]
        if width(cols, [columns[j].header for j in keep]) <= limit:
            break
    return keep


__all__ = ["Column", "FORMATS", "check_format", "fit", "render", "width"]
