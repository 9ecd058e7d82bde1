"""Materialization metadata the user would rather look at than read: previews and pictures."""

from __future__ import annotations

import base64
import io

import dagster as dg
import pyarrow as pa
from PIL import Image

# Enough rows to see what an output looks like without flooding the UI.
PREVIEW_ROWS = 10


def preview(table: pa.Table, columns: list[str] | None = None) -> dg.MetadataValue:
    """A Markdown table of the first rows."""
    head = table.select(columns or table.column_names).slice(0, PREVIEW_ROWS).to_pylist()
    if not head:
        return dg.MetadataValue.md("_(no rows)_")
    names = list(head[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in head:
        cells = [f"{value:.4g}" if isinstance(value, float) else str(value) for value in row.values()]
        lines.append("| " + " | ".join(cell.replace("|", "\\|")[:60] for cell in cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def picture(image: Image.Image, caption: str) -> dg.MetadataValue:
    """A PNG shown inline in the asset's materialization (Markdown with a data URI)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")


def error_counts(table: pa.Table) -> dict[str, int]:
    kinds = [kind for kind in table["error_kind"].to_pylist() if kind]
    return {kind: kinds.count(kind) for kind in sorted(set(kinds))}
