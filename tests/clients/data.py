"""Small frames and parquet bytes for the client tests."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def frame(rows: int = 50, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Integers, floats and strings (``id`` runs from ``start``)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + rows, dtype="int64")
    return pd.DataFrame({"id": ids, "x": rng.random(rows), "name": [f"n{i}" for i in ids]})


def parquet_bytes(df: pd.DataFrame, **kwargs: Any) -> bytes:
    """``df`` as a parquet file, written in memory (no filesystem involved)."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), sink, **kwargs)
    return sink.getvalue()


def parquet_frame(data: bytes) -> pd.DataFrame:
    """Parse parquet bytes read back through the broker."""
    return pq.read_table(pa.BufferReader(data)).to_pandas()
