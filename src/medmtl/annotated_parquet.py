"""Parquet files that carry their provenance: a table plus one json document stored under the
schema-metadata key `medmtl`. Manifests, prediction files and stats files are all of this kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medmtl.errors import UserError

METADATA_KEY = b"medmtl"


def write_annotated(
    path: Path, frame: pd.DataFrame, meta: dict[str, Any], schema: pa.Schema | None = None
) -> None:
    """Write `frame` with `meta` as json metadata; atomically (temporary name, then rename), so
    a killed job never leaves a finished-looking file."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    schema_meta = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(meta).encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table.replace_schema_metadata(schema_meta), tmp)
    tmp.replace(path)


def read_annotated(path: Path, what: str, hint: str = "") -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, metadata) of an annotated parquet file; `what` names the kind of file and `hint`
    says how to make it, for the error messages.

    Raises:
        UserError: the file is missing, unreadable, or has no `medmtl` metadata.
    """
    suffix = f"; {hint}" if hint else ""
    if not path.is_file():
        raise UserError(f"{path}: {what} not found{suffix}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path}: not a readable parquet file ({err}){suffix}") from err
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise UserError(f"{path}: parquet metadata 'medmtl' missing{suffix}")
    return table.to_pandas(), json.loads(raw)
