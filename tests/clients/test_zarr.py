"""zarr v3 and xarray through ``broker.fs.get_mapper``: arrays written, listed by the broker, read back."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
import zarr
from zarr.storage import FsspecStore

VALUES = np.arange(40 * 30, dtype="int32").reshape(40, 30) * 7


def _check_array_files(ws, root: str) -> None:
    listed = ws.listed(root)
    chunks = sorted(p for p in listed if "/c/" in p)
    assert chunks == sorted(f"{root}/c/{i}/{j}" for i in range(4) for j in range(3)), listed
    assert f"{root}/zarr.json" in listed and ws.stored() == ws.listed()
    meta = json.loads(ws.broker.read_bytes(f"{root}/zarr.json"))
    assert meta["shape"] == [40, 30] and meta["zarr_format"] == 3


def test_zarr_array_through_get_mapper(ws):
    mapper = ws.fs.get_mapper("z")
    array = zarr.create_array(store=mapper, shape=VALUES.shape, chunks=(10, 10), dtype="int32")
    array[:] = VALUES
    _check_array_files(ws, "z")
    back = zarr.open_array(store=ws.fs.get_mapper("z"), mode="r")
    np.testing.assert_array_equal(back[:], VALUES)
    np.testing.assert_array_equal(back[5:15, 12:13], VALUES[5:15, 12:13])


def test_zarr_through_fsspec_store_from_mapper(ws):
    store = FsspecStore.from_mapper(ws.fs.get_mapper("nested/s"))
    group = zarr.open_group(store=store, mode="w")
    group.create_array("a", shape=VALUES.shape, chunks=(10, 10), dtype="int32")[:] = VALUES
    _check_array_files(ws, "nested/s/a")
    reopened = zarr.open_group(store=FsspecStore.from_mapper(ws.fs.get_mapper("nested/s"), read_only=True),
                               mode="r")
    np.testing.assert_array_equal(reopened["a"][:], VALUES)


def test_xarray_to_zarr_open_zarr(ws):
    data = xr.Dataset({"temperature": (("t", "x"), VALUES.astype("float64") / 3)},
                      coords={"t": np.arange(40), "x": np.arange(30) * 0.5})
    data.to_zarr(ws.fs.get_mapper("xr/cube.zarr"), mode="w", consolidated=False)
    listed = ws.listed("xr")
    assert "xr/cube.zarr/zarr.json" in listed and "xr/cube.zarr/temperature/zarr.json" in listed, listed
    assert any(p.startswith("xr/cube.zarr/temperature/c/") for p in listed) and ws.stored() == listed
    opened = xr.open_zarr(ws.fs.get_mapper("xr/cube.zarr"), consolidated=False)
    xr.testing.assert_identical(opened.load(), data)
