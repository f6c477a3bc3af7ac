"""Label sheets of released datasets (PH2, UDIAT): an xlsx table found by its header cells."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from medmtl.errors import UserError


def read_xlsx_table(path: Path, columns: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Read the table on the first sheet of an xlsx file, finding its header row by its cells.

    Released label sheets put a title block above the table (PH2: about a dozen rows) and their
    exact header names are not always known (UDIAT), so the header row is the first row that
    holds, for every wanted column, a cell equal to one of its accepted names; names compare
    case-insensitively with runs of white space collapsed, and an earlier name in a list of
    accepted names wins over a later one.

    Args:
        path: the xlsx file.
        columns: output column -> accepted header names, in order of preference.

    Returns:
        the rows below the header row, the wanted columns renamed to the keys of `columns`,
        cells as read (str, int, float, or None when empty); the index is the row's 1-based
        number in the sheet (for error messages).

    Raises:
        UserError: the file is not a readable xlsx, or no row holds all wanted headers (the
            message lists the cells of the row that came closest).
    """
    try:
        sheet = pd.read_excel(path, header=None, dtype=object)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: cannot read xlsx: {err}") from err
    rows = [[_header_text(cell) for cell in row] for row in sheet.itertuples(index=False)]
    found = [_find_columns(cells, columns) for cells in rows]
    for number, positions in enumerate(found):
        if len(positions) == len(columns):
            table = sheet.iloc[number + 1 :, [positions[c] for c in columns]]
            table = table.set_axis(list(columns), axis=1).set_axis(table.index + 1, axis=0)
            return table.astype(object).where(table.notna(), None)
    closest = max(range(len(rows)), key=lambda r: (len(found[r]), any(rows[r])), default=None)
    cells = [c for c in rows[closest] if c] if closest is not None else []
    wanted = "; ".join(f"{key}: one of {list(names)}" for key, names in columns.items())
    raise UserError(
        f"{path}: no header row with the wanted columns ({wanted}); the closest row "
        f"(row {closest + 1 if closest is not None else '-'}) has columns {cells}"
    )


def _header_text(cell: object) -> str:
    """A header cell as compared: white space collapsed, case folded; '' when empty."""
    return "" if pd.isna(cell) else " ".join(str(cell).split()).casefold()


def _find_columns(cells: list[str], columns: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Position of the first accepted name of each wanted column found in `cells`."""
    positions = {}
    for key, names in columns.items():
        for name in names:
            if _header_text(name) in cells:
                positions[key] = cells.index(_header_text(name))
                break
    return positions
