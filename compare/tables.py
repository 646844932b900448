"""Tables for the console and the Markdown reports, and the one number format they share."""
from __future__ import annotations

from typing import Sequence


def format_table(rows: Sequence[Sequence[object]], *, align: str | None = None, markdown: bool = False) -> str:
    """A plain-text (or Markdown) table; `align` is one 'l'/'r' per column (numbers right by default)."""
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not rows:
        return ""
    columns = len(rows[0])
    if align is None:
        align = "l" + "r" * (columns - 1)
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]

    def line(row):
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)]
        return ("| " + " | ".join(cells) + " |") if markdown else "  ".join(cells).rstrip()

    out = [line(rows[0])]
    if markdown:
        out.append("|" + "|".join((":" if a == "l" else "-") + "-" * w + (":" if a == "r" else "-")
                                  for w, a in zip(widths, align)) + "|")
    else:
        out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)


def fmt_num(value: float | None, digits: int = 3) -> str:
    """Numbers for tables: '-' for missing, thousands separators, `digits` significant figures."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}"
    if magnitude == 0:
        return "0"
    return f"{value:.{digits}g}"
