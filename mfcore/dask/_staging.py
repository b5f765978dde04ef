"""Stages 1 and 2 of a Dask fit, one task per partition: check the ratings and list their
distinct ids (*scan*), then map ids to rows and cut the ratings into bands (*route*).
Raw ratings never reach the client or the scheduler."""
import re

import numpy as np

from ..data import as_ratings
from ..ids import normalize_ids, plain, sorted_unique

ID_STAGES = (("users", 0), ("items", 1))


def scan(frame, columns, dtype):
    """One partition's length, first raw ids, id kinds, distinct ids and check errors."""
    out = {"n": len(frame), "errors": {}, "kind": {}, "first": {}, "ids": {}}
    missing = [c for c in columns if c not in frame.columns]
    if missing:  # (a partition built by hand can lack what the frame's metadata promises)
        out["errors"]["columns"] = ValueError(
            f"a partition has no column {missing[0]!r} (its columns: {list(frame.columns)})")
        return out
    for name, col in ID_STAGES:
        raw = frame[columns[col]].to_numpy()
        try:
            ids = normalize_ids(raw, name)
        except ValueError as exc:
            out["errors"][name] = exc
            out["ids"][name] = None
            continue
        out["ids"][name] = sorted_unique(ids)
        out["kind"][name] = "str" if ids.dtype.kind == "U" else "int"
        out["first"][name] = plain(raw[0]) if len(raw) else None
    try:
        as_ratings(frame[columns[2]].to_numpy(), dtype)
    except ValueError as exc:
        out["errors"]["ratings"] = exc
    return out


def scan_info(scan):
    return {key: value for key, value in scan.items() if key != "ids"}


def scan_ids(scan, name):
    return scan["ids"][name]


def _union(*parts):
    parts = [a for a in parts if a is not None and len(a)]
    return sorted_unique(np.concatenate(parts)) if parts else None


def tree_union(client, futures, fan_in=8):
    """The sorted distinct ids of all partitions, merged on the workers in a tree."""
    while len(futures) > 1:
        futures = [client.submit(_union, *futures[s:s + fan_in], pure=False)
                   for s in range(0, len(futures), fan_in)]
    return futures[0].result()


def _renumbered(exc, offset):
    """``exc`` with its 'position N' moved by ``offset`` (a partition's start in the data)."""
    text = re.sub(r"position (\d+)", lambda m: f"position {int(m[1]) + offset}", str(exc))
    return type(exc)(text)


def check_scans(infos):
    """Raise the error a local fit of the concatenated partitions would raise, if any."""
    offsets = np.concatenate([[0], np.cumsum([info["n"] for info in infos])])
    for info in infos:
        if "columns" in info["errors"]:
            raise info["errors"]["columns"]
    for name in ("users", "items", "ratings"):
        for info, offset in zip(infos, offsets):
            if name in info["errors"]:
                raise _renumbered(info["errors"][name], int(offset))
        if name == "ratings":
            break
        kinds = [(info["kind"][name], info["first"][name], off)
                 for info, off in zip(infos, offsets) if info["n"]]
        if len({kind for kind, _, _ in kinds}) > 1:
            num = next(first for kind, first, _ in kinds if kind == "int")
            string, pos = next((first, off) for kind, first, off in kinds if kind == "str")
            raise ValueError(f"{name}: mixed id types: {num!r} and {string!r} (position {pos}); "
                             "use all integers or all strings")
    if offsets[-1] == 0:
        raise ValueError("cannot fit on empty data: no ratings given")
    return offsets




def route(frame, offset, columns, dtype, user_map, item_map, user_edges, item_edges):
    """One partition's ratings as rows, cut into user bands and item bands: a dict
    ``(side, band) -> (u, i, r, g)`` (g: the rating's position in the whole data)."""
    u = user_map.lookup(frame[columns[0]].to_numpy(), "users")
    i = item_map.lookup(frame[columns[1]].to_numpy(), "items")
    r = as_ratings(frame[columns[2]].to_numpy(), dtype)
    g = np.arange(offset, offset + len(r), dtype=np.int64)
    out = {}
    for side, rows, edges in ((0, u, user_edges), (1, i, item_edges)):
        band = np.searchsorted(edges, rows, side="right") - 1
        for b in range(len(edges) - 1):
            keep = band == b
            out[side, b] = (u[keep], i[keep], r[keep], g[keep])
    return out


