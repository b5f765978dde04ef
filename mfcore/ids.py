"""Raw user/item ids <-> contiguous int32 indices.

Policy (one for the whole library):

* Ids are either all integers or all strings. Floats are accepted when every
  value is integral (``5863.0`` is the id ``5863``); ``5863.5``, NaN, None,
  booleans and a mix of numbers and strings raise ``ValueError`` naming the
  first offending value.
* Indices are assigned in sorted order of the raw ids at ``fit`` time and new
  ids are appended after them (``IdMap.extend``), so a fitted index never moves.
* Looking up an id the map does not hold gives -1; callers decide the policy
  for unknown ids (see ``Model.predict``).
* A string id has at most ``MAX_ID_LENGTH`` (4,096) characters: a longer one is
  a ``ValueError`` naming its position and length (the readers name its line).
  Real ids (user names, SKUs, URLs, UUIDs) are far shorter; without a bound a
  file of megabyte ids made every id array megabytes per element (numpy's
  fixed-width strings). ``IdMap(ids)`` itself takes any length, so model files
  written before the bound still load.
"""
import numbers

import numpy as np

from .errors import IdKindError, shown

__all__ = ["IdMap", "normalize_ids", "sorted_unique", "factorize", "MAX_ID_LENGTH"]

#: the most characters a string id may have (see the module docstring)
MAX_ID_LENGTH = 4096

INT_KIND = "int"
DENSE_SPAN = 1 << 20  # an int id range this much wider than 4x the ids still gets a table
SORTED_QUERIES_FROM = 1 << 16  # map and query sizes from which lookups sort the queries first
STR_KIND = "str"


def plain(value):
    """A numpy scalar as the Python value it holds, for readable error messages."""
    return value.item() if isinstance(value, np.generic) else value


def _first_bad(values, ok):
    bad = np.flatnonzero(~ok)
    return int(bad[0]), plain(values[bad[0]])


def normalize_ids(raw, name="ids", max_length=MAX_ID_LENGTH):
    """Return ``raw`` as a 1-d int64 or unicode array following the id policy; string ids
    longer than ``max_length`` characters are an error (None: no bound)."""
    arr = _normalized(raw, name)
    if arr.dtype.kind == "U" and max_length is not None and arr.itemsize // 4 > max_length:
        lengths = np.char.str_len(arr)   # (only when some id may be too long)
        over = np.flatnonzero(lengths > max_length)
        if len(over):
            pos = int(over[0])
            raise ValueError(f"{name}: the id at position {pos} has {lengths[pos]:,} characters; "
                             f"an id may have at most {max_length:,}: {shown(str(arr[pos]), 60)}")
    return arr


def _normalized(raw, name):
    if raw is None:
        raise ValueError(f"{name} is None: pass one id per rating (a list, array or Series)")
    if hasattr(raw, "to_numpy"):  # pandas Series / Index, without importing pandas
        raw = raw.to_numpy()
    if isinstance(raw, (list, tuple)):
        if np.ndim(raw) != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {np.shape(raw)}")
        arr = np.empty(len(raw), dtype=object)
        arr[:] = raw
        raw = arr
    arr = np.asarray(raw)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iu":
        if kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name}: id {plain(arr.max())} does not fit in int64")
        return arr.astype(np.int64, copy=False)
    if kind == "f":
        return _integral_floats(arr, name)
    if kind == "U":
        return arr
    if kind == "S":
        return arr.astype("U")
    if kind == "b":
        raise ValueError(f"{name}: boolean ids are not allowed (got {plain(arr[0])!r})")
    if kind == "O":
        return _normalize_objects(arr, name)
    raise ValueError(f"{name}: unsupported id dtype {arr.dtype}")


def _integral_floats(arr, name):
    ok = np.isfinite(arr)
    if not ok.all():
        pos, val = _first_bad(arr, ok)
        raise ValueError(f"{name}: missing or non-finite id {val!r} at position {pos}")
    ok = arr == np.floor(arr)
    if not ok.all():
        pos, val = _first_bad(arr, ok)
        raise ValueError(f"{name}: non-integral float id {val!r} at position {pos}; "
                         "ids must be integers or strings")
    if arr.size and np.abs(arr).max() >= 2.0 ** 53:
        raise ValueError(f"{name}: float id too large to be an exact integer")
    return arr.astype(np.int64)


def _normalize_objects(arr, name):
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    is_str = np.fromiter((isinstance(v, (str, bytes)) for v in arr), bool, arr.size)
    if is_str.all():
        return np.array([v.decode() if isinstance(v, bytes) else v for v in arr], dtype="U")
    is_num = np.fromiter(
        (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in arr),
        bool, arr.size)
    if is_num.all():
        values = np.array(arr.tolist())
        if values.dtype.kind == "O":  # an int beyond 64 bits, a Decimal...: no numeric dtype
            pos = next(p for p, v in enumerate(arr) if not isinstance(v, (int, float, np.number))
                       or (isinstance(v, int) and not -2**63 <= v < 2**63))
            raise ValueError(f"{name}: id {shown(str(arr[pos]))} at position {pos} is not an "
                             "integer that fits in 64 bits (nor a string)")
        return _normalized(values, name)
    if is_str.any() and is_num.any():
        pos = int(np.flatnonzero(is_str)[0])
        raise ValueError(f"{name}: mixed id types: {plain(arr[int(np.flatnonzero(is_num)[0])])!r} "
                         f"and {arr[pos]!r} (position {pos}); use all integers or all strings")
    pos, val = _first_bad(arr, is_str | is_num)
    raise ValueError(f"{name}: invalid id {val!r} at position {pos}")


def sorted_unique(values):
    """The distinct values of a 1-d array, sorted (``np.unique(values)``) through one ``np.sort``.

    numpy >= 2.3 answers a plain ``np.unique`` with a hash table: ~60x slower on
    10M widely spread int64 keys (8 s against 0.13 s here).
    """
    values = np.sort(values)
    if values.size > 1:
        keep = np.empty(values.size, dtype=bool)
        keep[0] = True
        np.not_equal(values[1:], values[:-1], out=keep[1:])
        values = values[keep]
    return values


def _table_pays(span, n):
    """Whether ``n`` integer ids spanning ``span`` values are dense enough for an O(1) table
    indexed by ``id - min id`` (int32 per value of the span) instead of a sort or search."""
    return span <= 4 * n + DENSE_SPAN


def factorize(values):
    """(sorted distinct values, int32 position of each value among them) of a 1-d array.

    Integers within a range not much wider than the data (MovieLens ids) take an
    O(n) table instead of a sort: 10M ids in ~0.1 s instead of ~1.5 s.
    """
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if _table_pays(high - low + 1, values.size):
            # int32 offsets where the span allows: no int64 copy of the ids
            narrow = np.int32 if high - low < np.iinfo(np.int32).max else np.int64
            offsets = np.subtract(values, low, out=np.empty(values.size, narrow), casting="unsafe")
            present = np.zeros(high - low + 1, dtype=bool)
            present[offsets] = True
            codes = np.cumsum(present, dtype=np.int32)
            codes -= 1
            return (np.flatnonzero(present) + low).astype(values.dtype), codes[offsets]
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.astype(np.int32).ravel()


class IdMap:
    """Maps raw ids to int32 indices 0..n-1 and back.

    ``ids[index]`` is the raw id of an index; ``lookup(raw)`` the index of a raw
    id (-1 when unknown). Lookups gather from a table when integer ids are dense,
    else run vectorized binary searches.

    Examples
    --------
    >>> from mfcore import IdMap
    >>> ids = IdMap(["b", "a", "c"])
    >>> ids.lookup(["c", "a", "zzz"]).tolist()
    [2, 1, -1]
    >>> str(ids.ids[2])
    'c'
    """

    def __init__(self, ids):
        ids = normalize_ids(ids, max_length=None)  # (a model file's ids, as written)
        if len(ids) >= np.iinfo(np.int32).max:
            raise ValueError(f"too many distinct ids: {len(ids)}")
        sorter = np.argsort(ids, kind="stable")
        sorted_ids = ids[sorter]
        if len(ids) > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
            raise ValueError("IdMap ids must be distinct")
        self._set(ids, sorted_ids, sorter)

    def _set(self, ids, sorted_ids, sorter):
        self.ids = ids
        self._sorted = sorted_ids
        self._sorter = sorter
        self._table = None  # dense int id -> index table, built on first lookup when small

    @classmethod
    def fit(cls, raw, name="ids"):
        """Build a map from raw ids (duplicates allowed); return it and the indices of ``raw``."""
        arr = normalize_ids(raw, name)
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        uniq, codes = factorize(arr)
        return cls.from_sorted(uniq, name), codes

    @classmethod
    def from_sorted(cls, uniq, name="ids"):
        """The map of ids already normalized, sorted and distinct (``IdMap.fit``'s, or the
        union ``mfcore.dask`` reduces from its partitions), in their order."""
        if len(uniq) >= np.iinfo(np.int32).max:  # (int32 codes would be wrong)
            raise ValueError(f"too many distinct {name}: {len(uniq)}")
        idmap = cls.__new__(cls)
        idmap._set(uniq, uniq, np.arange(len(uniq)))
        return idmap

    def __getstate__(self):  # the lookup table is a cache: rebuilt on demand, not pickled
        return dict(self.__dict__, _table=None)

    def __setstate__(self, state):  # pickles from before the cache existed lack it
        self.__dict__.update(state)
        self.__dict__.setdefault("_table", None)

    @property
    def kind(self):
        return STR_KIND if self.ids.dtype.kind == "U" else INT_KIND

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return f"IdMap({len(self)} {self.kind} ids)"

    def __eq__(self, other):
        return isinstance(other, IdMap) and np.array_equal(self.ids, other.ids)

    def _check_kind(self, arr, name):
        if arr.size == 0 or len(self) == 0:
            return
        kind = STR_KIND if arr.dtype.kind == "U" else INT_KIND
        if kind != self.kind:
            raise IdKindError(f"{name}: the model's ids are {self.kind}s but got {kind}s "
                            f"(e.g. {plain(arr[0])!r})")

    def lookup(self, raw, name="ids"):
        """int32 index of each raw id, -1 where the id is unknown."""
        arr = normalize_ids(raw, name)
        self._check_kind(arr, name)
        out = np.full(arr.shape, -1, dtype=np.int32)
        if len(self) == 0 or arr.size == 0:
            return out
        table = self._dense_table()
        if table is not None:  # ids in a small range (the usual case): one gather, no search
            inside = (arr >= self._sorted[0]) & (arr <= self._sorted[-1])
            out[inside] = table[arr[inside] - self._sorted[0]]
            return out
        if len(self) > SORTED_QUERIES_FROM and arr.size > SORTED_QUERIES_FROM:
            # many queries into a map larger than the caches: search them in sorted order
            order = np.argsort(arr)
            pos = np.empty(arr.size, dtype=np.intp)
            pos[order] = np.searchsorted(self._sorted, arr[order])
        else:
            pos = np.searchsorted(self._sorted, arr)
        pos = np.minimum(pos, len(self) - 1)
        hit = self._sorted[pos] == arr
        out[hit] = self._sorter[pos[hit]]
        return out

    def _dense_table(self):
        """For dense enough integer ids (``_table_pays``): an int32 array indexed by
        ``id - min id`` giving the index (-1 for gaps); else None. Built on first use."""
        if self._table is None and self.kind == INT_KIND and len(self):
            span = int(self._sorted[-1]) - int(self._sorted[0]) + 1
            if _table_pays(span, len(self)):
                table = np.full(span, -1, dtype=np.int32)
                table[self._sorted - self._sorted[0]] = self._sorter
                self._table = table
            else:
                self._table = False
        return self._table if self._table is not False else None

    def extend(self, raw, name="ids"):
        """Append ids not yet in the map; return the indices of ``raw``."""
        arr = normalize_ids(raw, name)
        self._check_kind(arr, name)
        idx = self.lookup(arr, name)
        new = sorted_unique(arr[idx < 0])
        if new.size:
            ids = np.concatenate([self.ids, new]) if len(self) else new
            self.__init__(ids)
            idx = self.lookup(arr, name)
        return idx
