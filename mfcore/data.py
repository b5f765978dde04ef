"""Training data as the estimators see it: checked, mapped to rows, duplicates merged.

Every estimator's ``fit`` goes through ``prepare`` (raw ids and ratings in,
``Ratings`` out) and ``validation_rows``; nothing below this module sees a raw id.
The seen items a fitted model keeps (for every user row, the sorted item rows it
rated in training: CSR ``seen_indptr_`` int64, ``seen_items_`` int32) are built
and grown here too (``seen_csr``, ``merge_seen``, ``replace_seen_rows``).

Data in, one convention for every entry point (``fit``, ``predict``, ``evaluate``,
``fold_in``, ``search``, ``cross_validate``, the ``split`` functions): three arrays
(users, items, ratings), or one table of ratings, read by ``rating_columns``:

* a pandas DataFrame, a pyarrow Table or a polars DataFrame whose columns are named
  as ``read_ratings`` names them (``user``, ``item``, ``rating``, ``timestamp``) or by
  a usual alias (``userId``, ``movieId``, ``itemId``, ``score``...: ``io.ALIASES``,
  any case), or named with ``columns=``: a dict ``{"user": "cust", ...}`` or the
  names of the user, item[, rating[, timestamp]] columns in that order;
* a scipy.sparse matrix of ratings: rows are users, columns items, each stored
  entry a rating (the ids are the row and column numbers).
"""
import dataclasses
import fractions
import math
import numbers

import numpy as np

from .errors import DuplicateRatingsWarning, UnknownIdWarning, warn
from .ids import IdMap, normalize_ids, plain, sorted_unique
from .io import ALIASES, COLUMNS
from ._kernels.layout import scatter_rows, sort_rows

__all__ = ["Ratings", "RatingSummary", "exact_sum", "prepare", "as_ratings", "to_numpy",
           "check_lengths", "merge_duplicates", "merge_sorted", "report_duplicates",
           "validation_rows", "Held", "DUPLICATE_POLICIES", "is_table", "column_names",
           "rating_columns", "rating_arrays", "as_frame", "warn_if_implausible", "seen_csr",
           "merge_seen", "check_seen", "replace_seen_rows", "StreamedRatings", "prepare_chunks",
           "is_chunked", "concatenated"]

DUPLICATE_POLICIES = ("mean", "last", "keep", "error")


def to_numpy(x):
    return x.to_numpy() if hasattr(x, "to_numpy") else x


def is_table(data):
    """Whether ``data`` is a table of ratings ``rating_columns`` reads (checked without
    importing pandas, pyarrow, polars or scipy)."""
    if hasattr(data, "iloc") and getattr(data, "ndim", 0) == 2:  # pandas DataFrame
        return True
    if hasattr(data, "column_names") and hasattr(data, "num_rows"):  # pyarrow Table
        return True
    if hasattr(data, "get_column") and hasattr(data, "columns"):  # polars DataFrame
        return True
    return hasattr(data, "tocoo") and hasattr(data, "nnz")  # scipy.sparse


def column_names(names, columns=None, need=("user", "item", "rating"), optional=("timestamp",),
                 what="data"):
    """{canonical name: the table's column name} for a table with columns ``names``.

    ``columns``: None (find each by its canonical name, else by a usual alias,
    ``io.ALIASES``, in any case), a dict from canonical names to the table's, or
    the table's names of user, item[, rating[, timestamp]] in that order.
    ``need``: the canonical names that must be found; ``optional`` ones are
    looked for too. ``ValueError`` names what is missing or ambiguous.
    """
    names = list(names)
    if columns is not None:
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",")]
        if not isinstance(columns, dict):
            columns = dict(zip(COLUMNS, columns))
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise ValueError(f"columns: unknown key(s) {', '.join(map(repr, unknown))}; each "
                             f"must be one of {', '.join(COLUMNS)}")
        absent = [c for c in columns.values() if c not in names]
        if absent:
            raise ValueError(f"{what}: no column {absent[0]!r} (its columns: {names})")
    chosen = {}
    for canon in need + tuple(optional):
        if columns is not None and canon in columns:
            chosen[canon] = columns[canon]
            continue
        if canon in names:
            chosen[canon] = canon
            continue
        found = [c for c in names if str(c).lower() in ALIASES[canon]
                 and c not in (columns or {}).values()]
        if len(found) > 1:
            raise ValueError(f"{what}: columns {found} could each be the {canon} column; say "
                             f"which with columns={{{canon!r}: ...}}")
        if found:
            chosen[canon] = found[0]
        elif canon in need:
            raise ValueError(
                f"{what}: no {canon} column (its columns: {names}); name it "
                f"{canon!r} or a usual alias ({', '.join(ALIASES[canon][:5])}...), or pass "
                f"columns={{{canon!r}: <its name>}}")
    return chosen


def rating_columns(data, columns=None, need=("user", "item", "rating"),
                   optional=("timestamp",), what="data"):
    """({canonical name: 1-d column}, the pandas index or None) of the table ``data``
    (see the module docstring); the columns are pandas Series or numpy arrays."""
    if hasattr(data, "tocoo") and hasattr(data, "nnz"):  # scipy.sparse: rows x columns
        if columns is not None:
            raise ValueError("columns= names a table's columns; a sparse matrix has rows "
                             "(users), columns (items) and ratings")
        coo = data.tocoo()
        return {"user": coo.row.astype(np.int64), "item": coo.col.astype(np.int64),
                "rating": coo.data}, None
    if hasattr(data, "iloc"):  # pandas
        chosen = column_names(data.columns, columns, need, optional, what)
        return {c: data[name] for c, name in chosen.items()}, data.index
    if hasattr(data, "column_names"):  # pyarrow
        chosen = column_names(data.column_names, columns, need, optional, what)
        return {c: data.column(name).to_numpy() for c, name in chosen.items()}, None
    chosen = column_names(data.columns, columns, need, optional, what)  # polars
    return {c: data.get_column(name).to_numpy() for c, name in chosen.items()}, None


def rating_arrays(users, items=None, ratings=None, columns=None, need_ratings=True, what="fit"):
    """(users, items, ratings, index) of an entry point's data: three arrays as given
    (index None), or the columns of a table passed alone as ``users`` (index: its
    pandas index, else None). Without ``need_ratings`` (predict) the ratings may be
    absent (None)."""
    if is_table(users):
        if items is not None or ratings is not None:
            raise TypeError(f"{what}: give a table of ratings alone, or three arrays "
                            "(users, items, ratings), not both")
        need = ("user", "item", "rating") if need_ratings else ("user", "item")
        found, index = rating_columns(users, columns, need, ("rating",) if not need_ratings
                                      else (), what)
        return found["user"], found["item"], found.get("rating"), index
    if columns is not None:
        raise ValueError(f"{what}: columns= names the columns of a table (a pandas DataFrame "
                         "...); with arrays, pass users, items and ratings in that order")
    for name, value in (("items", items), ("ratings", ratings if need_ratings else 0)):
        if value is None:
            raise ValueError(
                f"{name} is None: {what} takes "
                f"{'three arrays (users, items, ratings)' if need_ratings else 'two arrays (users, items)'}, "
                "or one table "
                f"of ratings (a pandas DataFrame with user, item{', rating' if need_ratings else ''} "
                f"columns) alone; got a {type(users).__name__} and no {name}")
    return users, items, ratings, None


def as_frame(data, columns=None, need=("user", "item", "rating"), optional=("timestamp",),
             what="data"):
    """(a pandas DataFrame, {canonical name: its column name}) of ``data``: a pandas
    DataFrame as it is (its own names), any other table or a (users, items, ratings[,
    timestamps]) sequence as a new DataFrame with the canonical names."""
    import pandas as pd

    if hasattr(data, "iloc") and getattr(data, "ndim", 0) == 2:
        return data, column_names(data.columns, columns, need, optional, what)
    if is_table(data):
        found, _ = rating_columns(data, columns, need, optional, what)
    elif isinstance(data, (tuple, list)) and 3 <= len(data) <= 4:
        if columns is not None:
            raise ValueError(f"{what}: columns= names the columns of a table, not of a "
                             "(users, items, ratings) triple")
        found = dict(zip(COLUMNS, data))
        check_lengths(**{f"{name}s" if name != "timestamp" else "timestamps": to_numpy(a)
                         for name, a in found.items()})
    else:
        raise TypeError(f"{what} must be a table of ratings (a pandas DataFrame with user, "
                        "item, rating columns, a pyarrow Table ...) or a (users, items, "
                        f"ratings) triple, got {type(data).__name__}")
    frame = pd.DataFrame({name: to_numpy(col) for name, col in found.items()})
    return frame, {name: name for name in found}


def _describe(value):
    """A short description of ``value`` for an error message."""
    size = f" of {len(value)} items" if hasattr(value, "__len__") else ""
    return f"a {type(value).__name__}{size}"


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def as_ratings(ratings, dtype, name="ratings"):
    """Ratings as a 1-d finite array of ``dtype``; a clear error for anything else."""
    if ratings is None:
        raise ValueError(f"{name} is None: pass one rating per (user, item) pair")
    ratings = to_numpy(ratings)
    if isinstance(ratings, (list, tuple)):
        arr = np.empty(len(ratings), dtype=object)
        arr[:] = ratings
        arr = np.array(arr.tolist()) if all(_is_number(v) for v in arr) else arr
    else:
        arr = np.asarray(ratings)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        bad = [(pos, v) for pos, v in enumerate(arr) if not _is_number(v)]
        if bad:
            pos, v = bad[0]
            raise ValueError(f"{name} must be numeric: got {v!r} ({type(v).__name__}) at position {pos}")
        arr = arr.astype(np.float64)
    elif arr.dtype.kind not in "iuf":
        first = arr[0] if arr.size else None
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype} (e.g. {plain(first)!r})")
    source = arr
    with np.errstate(over="ignore", under="ignore"):
        arr = arr.astype(dtype, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        pos = int(np.flatnonzero(~finite)[0])
        beyond = (f" in {np.dtype(dtype).name} (use dtype='float64' or rescale them)"
                  if np.isfinite(source[pos]) else "")
        raise ValueError(f"{name} must be finite{beyond}: got {plain(source[pos])!r} at "
                         f"position {pos}")
    if source.dtype != arr.dtype and source.dtype.kind == "f":
        lost = (arr == 0) & (source != 0)  # below float32's smallest: silently 0
        if lost.any():
            pos = int(np.flatnonzero(lost)[0])
            raise ValueError(f"{name} must be representable in {np.dtype(dtype).name}: got "
                             f"{plain(source[pos])!r} at position {pos}, which it holds as 0 "
                             "(use dtype='float64' or rescale them)")
    return np.ascontiguousarray(arr)


def check_lengths(**arrays):
    """The common length of the named arrays; ``ValueError`` listing them if they differ."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"inputs differ in length: {detail}")
    return next(iter(lengths.values()))


def _dyadic_sum(values, chunk=1 << 18):
    """The exact sum of whole, half or quarter values by int64 sums (cache-sized chunks),
    or None when some value is finer or the sum could leave int64."""
    for q in (0, 1, 2):
        scale, total, ok = float(1 << q), 0, True
        if float(np.abs(values).max()) * values.size * scale >= 2.0 ** 62:
            return None
        for start in range(0, values.size, chunk):
            part = values[start:start + chunk].astype(np.float64) * scale
            whole = part.astype(np.int64)
            if not np.array_equal(whole, part):
                ok = False
                break
            total += int(whole.sum())
        if ok:
            return fractions.Fraction(total, 1 << q)
    return None


def exact_sum(values):
    """The exact sum of finite float ``values`` as a ``Fraction``.

    Unlike a float sum it does not depend on the order or the grouping of the
    values, so sums of parts (a Dask worker's ratings) add up to exactly the
    sum of the whole, and the mean rounded from it is the same bit for bit.
    Each float64 is mantissa * 2**exponent with a 53-bit integer mantissa; the
    mantissas' 26-bit halves are summed per exponent in float64, exactly (chunks
    of 2**24 values keep every partial sum below 2**51). Whole, half and quarter
    ratings take a quicker exact int64 sum.
    """
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return fractions.Fraction(0)
    quick = _dyadic_sum(values)
    if quick is not None:
        return quick
    x = values.astype(np.float64, copy=False)
    total = fractions.Fraction(0)
    for start in range(0, x.size, 1 << 24):
        mant, exp = np.frexp(x[start:start + (1 << 24)])
        mant = (mant * 2.0 ** 53).astype(np.int64)
        low = int(exp.min())
        exp = exp - low
        for part, shift in ((mant >> 26, 26), (mant & ((1 << 26) - 1), 0)):
            sums = np.bincount(exp, weights=part)
            for e in np.flatnonzero(sums):
                total += fractions.Fraction(int(sums[e]) << shift) * fractions.Fraction(2) ** (
                    int(e) + low - 53)
    return total


@dataclasses.dataclass
class RatingSummary:
    """What a fresh fit needs of the whole training data besides the layout: the id maps,
    the number of ratings, their exact sum, range and dtype. Built from ``Ratings`` or,
    by ``combine``, from the summaries of disjoint parts (``mfcore.dask``) with the
    same result bit for bit."""
    user_map: IdMap
    item_map: IdMap
    n: int
    total: fractions.Fraction
    squares: fractions.Fraction
    low: float
    high: float
    dtype: np.dtype

    @classmethod
    def of(cls, r, user_map=None, item_map=None):
        """The summary of ratings ``r`` (maps attached when given)."""
        r = np.asarray(r)
        return cls(user_map, item_map, int(r.size), exact_sum(r), _exact_square_sum(r),
                   float(r.min()) if r.size else np.inf, float(r.max()) if r.size else -np.inf,
                   r.dtype)

    @classmethod
    def combine(cls, parts, user_map, item_map):
        """The summary of the union of disjoint parts (in any order)."""
        parts = list(parts)
        return cls(user_map, item_map, sum(s.n for s in parts),
                   sum((s.total for s in parts), fractions.Fraction(0)),
                   sum((s.squares for s in parts), fractions.Fraction(0)),
                   min(s.low for s in parts), max(s.high for s in parts),
                   parts[0].dtype)

    @property
    def mean(self):
        """The mean rating, correctly rounded from the exact sum."""
        return float(self.total / self.n)

    @property
    def spread(self):
        """The ratings' standard deviation: the square root of the variance computed exactly
        from the exact sums (0.0 for fewer than two distinct values)."""
        if self.n == 0:
            return 0.0
        variance = self.squares / self.n - (self.total / self.n) ** 2
        return _sqrt(variance) if variance > 0 else 0.0

    def __len__(self):
        return self.n


#: ratings within these magnitudes have squares that float64 holds as normal numbers
_SQUARE_SAFE = (2.0 ** -500, 2.0 ** 500)
#: Ratings a chunked pass over the data handles at a time (bounds its temporaries).
_CHUNK = 1 << 18


def _exact_square_sum(r):
    """The exact sum of the ratings' squares, each square rounded once in float64 (exact
    for float32 ratings), as a ``Fraction``: the same value wherever it is computed.
    Summed a chunk at a time, which the exact sums make independent of the chunks: no
    float64 copy of all the ratings."""
    r = np.asarray(r).reshape(-1)
    return sum((_square_sum_part(r[start:start + _CHUNK]) for start in range(0, r.size, _CHUNK)),
               fractions.Fraction(0))


def _square_sum_part(r):
    """``_exact_square_sum`` of one chunk.

    Beyond about 1e+-150 a square would overflow to inf or lose its digits to underflow
    (ratings of 1e200 gave a false "all ratings are equal" warning), so there each
    rating is split into mantissa and exponent, ``m * 2**e``, and ``m*m`` (rounded as the
    square would be in range) is summed per exponent, scaled exactly by ``2**(2e)``."""
    x = np.asarray(r, dtype=np.float64).reshape(-1)
    magnitude = np.abs(x)
    if not x.size or (magnitude.max() < _SQUARE_SAFE[1] and not (
            (magnitude < _SQUARE_SAFE[0]) & (magnitude > 0)).any()):
        return exact_sum(x * x)
    mant, exp = np.frexp(x)
    order = np.argsort(exp, kind="stable")
    exp, squares = exp[order], (mant * mant)[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(exp)) + 1])
    total = fractions.Fraction(0)
    for a, b in zip(starts, np.append(starts[1:], len(exp))):
        total += exact_sum(squares[a:b]) * fractions.Fraction(2) ** (2 * int(exp[a]))
    return total


def _sqrt(value):
    """The square root of a positive ``Fraction`` as a float, correctly rounded from the
    value rounded to float64 even where the value itself is beyond float64's range
    (scaled by an even power of two, which changes no digit)."""
    shift = (value.numerator.bit_length() - value.denominator.bit_length()) // 2
    scaled = value / fractions.Fraction(2) ** (2 * shift)
    return math.ldexp(math.sqrt(float(scaled)), shift)


@dataclasses.dataclass
class Ratings:
    """Training ratings as rows: ``u``, ``i`` (int32), ``r`` (the model's dtype), the id maps,
    ``keys``, the sorted distinct ``u * n_items + i`` when known (for the seen items), and
    ``t``, each rating's time in Unix seconds (float64) when given (``fit(times=...)``)."""
    u: np.ndarray
    i: np.ndarray
    r: np.ndarray
    user_map: IdMap
    item_map: IdMap
    keys: np.ndarray = None
    t: np.ndarray = None

    def __len__(self):
        return len(self.r)

    @property
    def dtype(self):
        return self.r.dtype

    def summary(self):
        """The ``RatingSummary`` of these ratings."""
        return RatingSummary.of(self.r, self.user_map, self.item_map)

    def subset(self, rows):
        """These rows of the ratings (same maps; ``keys`` dropped)."""
        return Ratings(self.u[rows], self.i[rows], self.r[rows], self.user_map, self.item_map,
                       t=None if self.t is None else self.t[rows])

    def bounds(self):
        """(lowest, highest) rating."""
        return float(self.r.min()), float(self.r.max())

    def row_counts(self):
        """(ratings per user row, per item row), up to the last row rated."""
        return np.bincount(self.u), np.bincount(self.i)

    def lone_share(self):
        """The share of the ratings that are the only rating of both their user and item."""
        return float(((np.bincount(self.u) == 1)[self.u] & (np.bincount(self.i) == 1)[self.i]).mean())

    def seen_csr(self):
        """The seen-items CSR of these ratings (``seen_csr``); ``keys`` are then dropped (the
        seen items hold what they said: 8 B a rating less in training)."""
        seen = seen_csr(self.u, self.i, len(self.user_map), len(self.item_map), keys=self.keys)
        self.keys = None
        return seen


def prepare(users, items, ratings, dtype, duplicates, user_map=None, item_map=None,
            times=None):
    """Validate and map raw training data to ``Ratings``, merging duplicates by policy.

    With ``user_map``/``item_map`` (a fitted model's) the maps are extended in
    place with the new ids; otherwise fresh maps are built. ``times``: each rating's
    time (checked seconds, ``timeterms.as_seconds``), merged like the ratings.
    """
    users = normalize_ids(to_numpy(users), "users")
    items = normalize_ids(to_numpy(items), "items")
    ratings = as_ratings(ratings, dtype)
    given = {} if times is None else {"times": times}
    if check_lengths(users=users, items=items, ratings=ratings, **given) == 0:
        raise ValueError("cannot fit on empty data: no ratings given")
    # each side's normalized ids (int64 or text) released once mapped (memory per rating)
    if user_map is not None:
        u = user_map.extend(users, "users")
        del users
        i = item_map.extend(items, "items")
    else:
        user_map, u = IdMap.fit(users, "users")
        del users
        item_map, i = IdMap.fit(items, "items")
    del items
    u, i, ratings, keys, times = merge_duplicates(u, i, ratings, user_map, item_map,
                                                  duplicates, times)
    return Ratings(u, i, ratings, user_map, item_map, keys, times)


# --- training data streamed from their source (a file), a chunk at a time ----------------

def is_chunked(data):
    """Whether ``data`` is a source of rating chunks (``io.RatingChunks``) for a streamed fit."""
    return getattr(data, "streams_ratings", False)


def prepare_chunks(source, dtype, duplicates, n_threads=1):
    """``prepare`` for ratings read from ``source`` a chunk at a time (``io.RatingChunks``:
    re-iterable, each chunk raw ``(users, items, ratings)``), never held whole.

    Pass 1 builds the id maps (the maps ``prepare`` builds: sorted distinct ids), each
    row's rating count, the exact ``RatingSummary`` (exact sums: the chunks change no bit)
    and the distinct ratings (up to ``MAX_CODED``); pass 2 writes each user's items into
    the seen-items CSR (a counting sort, then each row sorted), which finds duplicate
    pairs, and lets it go. The layouts are written by later passes
    (``StreamedRatings.chunks``), and the seen items again after training, once the
    layouts are gone (``StreamedRatings.build_seen``). Duplicates are merged by the
    ``duplicates`` policy as ``prepare`` merges them, in memory: with duplicates and a
    policy other than "keep" this returns ``prepare``'s ``Ratings`` of all the chunks (the
    memory bound of a streamed fit does not hold then).
    """
    users, items, parts, values = _IdCounts("users"), _IdCounts("items"), None, np.empty(0, dtype)
    for u, i, r in _checked_chunks(source, dtype):
        users.add(u)
        items.add(i)
        values = _distinct_ratings(values, r)
        part = RatingSummary.of(r)
        parts = part if parts is None else RatingSummary.combine([parts, part], None, None)
    if parts is None:
        raise ValueError("cannot fit on empty data: no ratings given")
    (user_map, user_counts), (item_map, item_counts) = users.result(), items.result()
    summary = RatingSummary.combine([parts], user_map, item_map)
    data = StreamedRatings(source, np.dtype(dtype), summary, user_counts, item_counts, values)
    if data.find_duplicates(n_threads) and duplicates != "keep":
        del data
        return prepare(*concatenated(source, dtype), dtype, duplicates)
    return data


#: the most distinct ratings a streamed layout codes in a byte each (``rating_values``)
MAX_CODED = 256


def _distinct_ratings(known, r):
    """The sorted distinct ratings of ``known`` (None: over ``MAX_CODED``) and ``r``."""
    if known is None:
        return None
    known = sorted_unique(np.concatenate([known, sorted_unique(r)]))
    return known if len(known) <= MAX_CODED else None


def _checked_chunks(source, dtype):
    """The chunks of ``source`` as (normalized ids, normalized ids, ratings of ``dtype``)."""
    offset = 0
    for chunk in source:
        if not isinstance(chunk, tuple) or len(chunk) != 3:
            raise ValueError(f"a rating source must give (users, items, ratings) chunks, got "
                             f"{_describe(chunk)} after {offset:,} ratings")
        where = f" (in the chunk from rating {offset:,})" if offset else ""
        u = normalize_ids(to_numpy(chunk[0]), "users" + where)
        i = normalize_ids(to_numpy(chunk[1]), "items" + where)
        r = as_ratings(chunk[2], dtype, "ratings" + where)
        offset += check_lengths(users=u, items=i, ratings=r)
        if len(r):
            yield u, i, r


def concatenated(source, dtype):
    """(users, items, ratings) of all the chunks of ``source``, as one set of arrays."""
    parts = list(zip(*_checked_chunks(source, dtype)))
    if not parts:
        raise ValueError("cannot fit on empty data: no ratings given")
    return tuple(np.concatenate(p) for p in parts)


class _IdCounts:
    """The distinct ids of a stream of chunks, sorted, with how often each occurs."""

    def __init__(self, name):
        self.name, self.ids, self.counts = name, None, None

    def add(self, ids):
        """Count the normalized ids of one chunk."""
        if self.ids is not None and (ids.dtype.kind == "U") != (self.ids.dtype.kind == "U"):
            raise ValueError(f"{self.name}: the ids are {_kinds(self.ids)} in one chunk of the "
                             f"ratings and {_kinds(ids)} in another (e.g. {plain(ids[0])!r})")
        ids, counts = _counted(ids)
        if self.ids is not None:
            ids, counts = _counted(np.concatenate([self.ids, ids]),
                                   np.concatenate([self.counts, counts]))
        self.ids, self.counts = ids, counts

    def result(self):
        """(the ``IdMap`` of the ids, rating count per row: int64)."""
        return IdMap.from_sorted(self.ids, self.name), self.counts


def _kinds(ids):
    return "strings" if ids.dtype.kind == "U" else "integers"


def _counted(ids, weights=None):
    """(sorted distinct ids, the count of each: its occurrences, or the sum of its
    ``weights``)."""
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    if weights is None:
        counts = np.diff(np.r_[starts, len(ids)]).astype(np.int64)
    else:
        counts = np.add.reduceat(weights[order], starts)
    return ids[starts], counts


class StreamedRatings:
    """Training ratings that stay in their source (``io.RatingChunks``), with what a fit
    needs of them besides its layout: the id maps, each row's rating count, the exact
    ``RatingSummary`` and the distinct ratings if few (``prepare_chunks`` builds it).
    ``chunks()`` reads them again as rows, a chunk at a time, for the estimator's layout
    (``SGDTrainer.from_chunks``, ``ALSLayout.from_chunks``) and the seen items
    (``build_seen``). It stands for ``Ratings`` where a fit reads only these (``keys`` and
    ``t``: None)."""

    keys = t = None

    def __init__(self, source, dtype, summary, user_counts, item_counts, rating_values=None):
        self.source, self.dtype, self._summary = source, dtype, summary
        self.rating_values = rating_values  # the distinct ratings, if at most MAX_CODED
        self.user_map, self.item_map = summary.user_map, summary.item_map
        self.user_counts, self.item_counts = user_counts, item_counts
        self.n_threads, self.repeats, self._lone = 1, 0, 0

    def __len__(self):
        return self._summary.n

    def summary(self):
        return self._summary

    def bounds(self):
        return self._summary.low, self._summary.high

    def row_counts(self):
        return self.user_counts, self.item_counts

    def lone_share(self):
        return self._lone / len(self)

    def chunks(self):
        """The ratings again, a chunk at a time: (user rows, item rows: int32, ratings of
        ``dtype``). ``ValueError`` if the source no longer gives what the first pass read."""
        n, changed = 0, False
        for users, items, r in _checked_chunks(self.source, self.dtype):
            u, i = self.user_map.lookup(users), self.item_map.lookup(items)
            n += len(r)
            changed = n > len(self) or bool((u < 0).any() or (i < 0).any())
            if changed:
                break
            yield u, i, r
        if changed or n != len(self):
            raise self.changed()

    def changed(self):
        """The error of a later pass whose ratings are not those the first pass read (each
        layout checks that every row or block got back exactly its count)."""
        return ValueError(f"the ratings source changed during the fit (it gave {len(self):,} "
                          "ratings on its first pass): was the file written meanwhile?")

    def find_duplicates(self, n_threads):
        """Pass 2: how many ratings repeat a (user, item) pair, found by building the seen
        items (``build_seen``), which are then let go: a fit holds them or its layout."""
        self.n_threads, self._lone = n_threads, 0
        lone_users, lone_items = self.user_counts == 1, self.item_counts == 1
        _, self.repeats = self.build_seen(lambda u, i: lone_users[u] & lone_items[i])
        return self.repeats

    def build_seen(self, lone=None):
        """The seen-items CSR of a pass over the chunks: the items by user row (a counting
        sort), each row sorted, then rid of repeats; (CSR, repeats). ``lone(u, i)``: which
        ratings of a chunk to count as lone (``lone_share``)."""
        indptr = np.zeros(len(self.user_counts) + 1, dtype=np.int64)
        np.cumsum(self.user_counts, out=indptr[1:])
        items, cursor, none = np.empty(len(self), np.int32), indptr[:-1].copy(), _NO_VALUES
        for u, i, _ in self.chunks():
            scatter_rows(u, i, none, cursor, items, none)
            if lone is not None:
                self._lone += int(np.count_nonzero(lone(u, i)))
        repeats = sort_rows(indptr, items, none, self.n_threads)
        return (_distinct_rows(indptr, items) if repeats else (indptr, items)), repeats


_NO_VALUES = np.zeros(0, np.float32)


def _distinct_rows(indptr, items):
    """A CSR with sorted rows less the repeats of a column within a row."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    keep = np.r_[True, (items[1:] != items[:-1]) | (rows[1:] != rows[:-1])]
    counts = np.bincount(rows[keep], minlength=len(indptr) - 1)
    out = np.zeros(len(indptr), dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out, items[keep]


def warn_if_implausible(data):
    """Warn about training data that fit without error but cannot be what was meant:
    ratings that look like Unix timestamps (the timestamp column passed as the ratings),
    and ratings most of which are the only rating of both their user and their item (no
    two users share an item: nothing collaborative to learn, only noise to memorise)."""
    low, high = data.bounds()
    if len(data) and low >= 1e8 and high < 1e14:  # (seconds or ms)
        import datetime
        dates = [datetime.datetime.fromtimestamp(v, datetime.timezone.utc).date()
                 for v in (low, high)] if high < 1e11 else None
        warn(f"the ratings run from {low:.6g} to {high:.6g}, like Unix "
             "timestamps" + (f" (dates {dates[0]} to {dates[1]})" if dates else "")
             + ": was the timestamp column passed as the ratings?", UserWarning)
    if len(data) >= 100:
        lone = data.lone_share()
        if lone >= 0.5:
            warn(f"{100 * lone:.0f}% of the {len(data):,} ratings are the only rating of both their "
                 "user and their item: they link no users to each other, so there is nothing "
                 "collaborative to learn (the factors can only memorise them); a rating model "
                 "needs users and items with several ratings each", UserWarning)


def merge_duplicates(u, i, ratings, user_map, item_map, policy, times=None):
    """(u, i, ratings, keys, times): duplicate (user, item) pairs merged by ``policy`` (the
    ``times``, if given, merged the same way); keys are the sorted distinct
    ``u * n_items + i`` (None with "keep"), reused for the seen items."""
    if policy == "keep":
        return u, i, ratings, None, times
    keys = _pair_keys(u, i, len(item_map))
    keys.sort()  # in place, one plain sort: the usual number of duplicates is 0
    repeats = keys[1:] == keys[:-1]
    n_dup = int(np.count_nonzero(repeats))
    if n_dup == 0:
        return u, i, ratings, keys, times
    del keys, repeats
    key = _pair_keys(u, i, len(item_map))
    order = np.argsort(key, kind="stable")  # equal keys stay in input order
    key = key[order]
    first = order[np.flatnonzero(key[1:] == key[:-1])[0]]
    report_duplicates(n_dup, (user_map.ids[u[first]], item_map.ids[i[first]]), policy)
    keys, merged = merge_sorted(key, ratings[order], policy)
    if times is not None:
        times = merge_sorted(key, times[order], policy)[1]
    n_items = len(item_map)
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32), merged, keys, times


def _pair_keys(u, i, n_items):
    """``u * n_items + i`` as int64, one key per (user, item) pair."""
    key = u.astype(np.int64)
    key *= n_items
    key += i
    return key


def merge_sorted(key, ratings, policy):
    """(distinct keys, merged ratings) of ratings sorted by key, equal keys in input order:
    each run's mean (in float64) for "mean", its last rating for "last"."""
    if not len(key):
        return key, ratings
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    if policy == "mean":
        merged = np.add.reduceat(ratings.astype(np.float64), starts) / counts
    else:  # last: the rating of the last occurrence in input order
        merged = ratings[starts + counts - 1]
    return key[starts], np.ascontiguousarray(merged, dtype=ratings.dtype)


def report_duplicates(n_dup, example, policy):
    """Raise (policy "error") or warn that ``n_dup`` ratings repeat a (user, item) pair;
    ``example``: the raw ids of one such pair."""
    user, item = (plain(x) for x in example)
    if policy == "error":
        raise ValueError(f"{n_dup} duplicate (user, item) ratings, e.g. user {user!r}, "
                         f"item {item!r}; pass duplicates='mean', 'last' or 'keep'")
    warn(f"merged {n_dup} duplicate (user, item) ratings with policy {policy!r} "
         f"(e.g. user {user!r}, item {item!r})", DuplicateRatingsWarning)


class Held(tuple):
    """Validation rows ``(u, i, r)``, and ``times``: their times in seconds, or None."""

    def __new__(cls, u, i, r, times=None):
        held = super().__new__(cls, (u, i, r))
        held.times = times
        return held


def validation_rows(data, validation, fraction, rng):
    """(training ``Ratings``, validation rows (``Held``) or None).

    From ``validation=(users, items, ratings[, times])`` or a table (raw ids,
    mapped with the training maps; unknown ids become -1 and get the fallback
    prediction; a table's timestamp column gives the times) or by holding out
    ``fraction`` of ``data`` at random (drawn from ``rng``).
    """
    if validation is not None and fraction is not None:
        raise ValueError("give either validation=(users, items, ratings) or "
                         "validation_fraction, not both")
    if validation is not None:
        vt = None
        if is_table(validation):
            found, _ = rating_columns(validation, None, ("user", "item", "rating"),
                                      ("timestamp",), "validation")
            vu, vi, vr, vt = (found.get(name) for name in ("user", "item", "rating", "timestamp"))
        elif not isinstance(validation, (tuple, list)) or len(validation) not in (3, 4):
            raise ValueError("validation must be a (users, items, ratings[, times]) tuple or a "
                             f"table of ratings, got {_describe(validation)}")
        else:
            vu, vi, vr, vt = (*validation, None)[:4]
        vr = as_ratings(vr, data.dtype, "validation ratings")
        vu = data.user_map.lookup(to_numpy(vu), "validation users")
        vi = data.item_map.lookup(to_numpy(vi), "validation items")
        if check_lengths(users=vu, items=vi, ratings=vr) == 0:
            raise ValueError("validation data is empty")
        if ((vu < 0) | (vi < 0)).all():
            warn(f"none of the {len(vr):,} validation ratings has a user and an item of the "
                 "training data: they are all predicted by the fallback, so scoring and early "
                 "stopping on them measure nothing (were the validation ratings drawn from "
                 "other data, or their columns swapped?)", UnknownIdWarning)
        timed = getattr(data, "t", None) is not None  # (a RatingSummary has no times)
        if vt is not None and timed:
            from .timeterms import as_seconds
            vt = as_seconds(vt, len(vr), "validation times")
        return data, Held(vu, vi, vr, vt if timed else None)
    if fraction is None:
        return data, None
    if not isinstance(data, Ratings):
        raise NotImplementedError("validation_fraction needs the ratings in one place; pass "
                                  "validation=(users, items, ratings) instead")
    held = rng.random(len(data)) < fraction
    if held.all() or not held.any():
        raise ValueError(f"validation_fraction={fraction} leaves no training or no "
                         f"validation ratings out of {len(data)}")
    train = data.subset(~held)  # its keys would describe all of data: dropped
    return train, Held(data.u[held], data.i[held], data.r[held],
                       None if data.t is None else data.t[held])


# --- the seen items: CSR of the item rows each user row rated -------------------------

def seen_csr(u, i, n_users, n_items, keys=None):
    """CSR (indptr int64, items int32) of the distinct item rows of each user row, sorted.

    ``keys``, when the caller has them: the sorted distinct ``u * n_items + i``.
    """
    key = keys if keys is not None else sorted_unique(
        np.asarray(u, np.int64) * n_items + np.asarray(i, np.int64))
    # the keys are sorted, so row r's are those in [r n_items, (r + 1) n_items); the items
    # are computed a chunk at a time (no int64 temporary the size of the data)
    indptr = np.searchsorted(key, np.arange(n_users + 1, dtype=np.int64) * n_items)
    items = np.empty(key.size, dtype=np.int32)
    for start in range(0, key.size, _CHUNK):
        items[start:start + _CHUNK] = key[start:start + _CHUNK] % n_items
    return indptr.astype(np.int64, copy=False), items


def _csr_pairs(indptr, items):
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return rows, items


def merge_seen(indptr, items, u, i, n_users, n_items):
    """The union of a seen CSR (possibly with fewer rows) and new (u, i) pairs."""
    rows, old = _csr_pairs(indptr, items)
    return seen_csr(np.concatenate([rows, np.asarray(u, np.int64)]),
                    np.concatenate([old, np.asarray(i, np.int64)]), n_users, n_items)


def check_seen(indptr, items, n_users, n_items):
    """Raise ``ValueError`` unless (indptr, items) is a valid seen CSR for this model shape."""
    if indptr.dtype != np.int64 or indptr.shape != (n_users + 1,):
        raise ValueError(f"seen_indptr has dtype {indptr.dtype} and shape {indptr.shape}, "
                         f"expected int64 and ({n_users + 1},)")
    if items.dtype != np.int32 or items.ndim != 1:
        raise ValueError(f"seen_items has dtype {items.dtype} and shape {items.shape}, "
                         "expected a 1-d int32 array")
    if indptr[0] != 0 or indptr[-1] != len(items) or (np.diff(indptr) < 0).any():
        raise ValueError("seen_indptr is not a valid CSR index (must start at 0, never "
                         f"decrease and end at len(seen_items)={len(items)})")
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"seen_items holds item rows outside 0..{n_items - 1}")
    rows, _ = _csr_pairs(indptr, items)
    if len(items) > 1 and ((np.diff(items) <= 0) & (np.diff(rows) == 0)).any():
        raise ValueError("seen_items is not sorted and distinct within each user")


def replace_seen_rows(indptr, items, u, i, n_users, n_items):
    """Seen CSR grown to ``n_users`` rows whose rows named in ``u`` hold exactly the pairs (u, i).

    O(nnz) copies, no sort of the kept rows: fold-in of one user into an
    ML-10M-sized model takes milliseconds.
    """
    n_old = len(indptr) - 1
    add_indptr, add_items = seen_csr(u, i, n_users, n_items)
    add_counts = np.diff(add_indptr)
    touched = np.flatnonzero(add_counts > 0)
    counts = np.zeros(n_users, dtype=np.int64)
    counts[:n_old] = np.diff(indptr)
    counts[touched] = add_counts[touched]
    new_indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    pieces, prev = [], 0
    for row in touched:  # ascending: untouched old rows before it, then its new items
        stop = min(row, n_old)
        pieces.append(items[indptr[prev]:indptr[stop]])
        pieces.append(add_items[add_indptr[row]:add_indptr[row + 1]])
        prev = max(prev, min(row + 1, n_old))
    pieces.append(items[indptr[prev]:indptr[n_old]])
    return new_indptr, np.concatenate(pieces).astype(np.int32, copy=False)
