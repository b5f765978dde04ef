"""Side features: how a table of user (or item) attributes becomes feature values.

A feature table is a pandas DataFrame indexed by the raw user (item) id, one row per id,
whose columns are

* categorical (object, string, category or bool dtype): one feature per level, value 1;
* multi-valued categorical: lists, tuples or sets of levels, or text with levels
  separated by ``|`` (MovieLens genres, ``"Action|Comedy"``): one feature per level, each
  of a row's n levels with value 1/n (the row's term is the mean of its levels' vectors);
* numeric (integer or float dtype): one feature, the value standardized by the column's
  mean and spread in the table the model was fitted with;

or a ``(matrix, ids)`` pair: a scipy.sparse (or dense) matrix with one row per id, its
columns used as given (the caller's own design). Each column of a DataFrame is one
*group* (one hyperprior in the sampler); a matrix is one group.

``FeatureEncoding.fit`` learns the columns, their kinds, levels and scaling from the
table given to ``fit``; ``encode`` turns any table with the same columns into feature
values for chosen ids, exactly as at fit time: that is what the model file keeps, so a
loaded model encodes new rows identically. Levels not seen at fit time become "no
feature" (counted in one warning); missing categorical values (None, NaN) too. A
numeric NaN or inf, a repeated id, a column added or missing: ``ValueError`` naming
the row and the column.

Example::

    >>> import pandas as pd
    >>> table = pd.DataFrame({"gender": ["F", "M"], "age": [25, 40],
    ...                       "genres": ["Action|Comedy", "Drama"]}, index=[7, 9])
    >>> enc = FeatureEncoding.fit(table, "user_features")
    >>> enc.names()
    ['gender=F', 'gender=M', 'age', 'genres=Action', 'genres=Comedy', 'genres=Drama']
    >>> (rows, cols, vals), present = enc.encode(table, np.array([9]), "user_features")
    >>> [(int(c), round(float(v), 3)) for c, v in zip(cols, vals)]
    [(1, 1.0), (2, 1.0), (5, 1.0)]
"""
import json
import math

import numpy as np

from .errors import UnknownIdWarning, warn
from .ids import IdMap, normalize_ids, plain

__all__ = ["FeatureEncoding", "MULTI_SEPARATOR", "add_terms", "by_rank", "feature_inputs",
           "feature_sums", "table_ids"]

#: The separator of levels in a multi-valued text column (MovieLens' genres).
MULTI_SEPARATOR = "|"


def feature_inputs(user_features, item_features):
    """``fit``'s inputs of the side features given (``mfcore.estimators``: by name,
    ``"user_features"``: the table and its ``FeatureEncoding``); empty without."""
    return {f"{side}_features": (table, FeatureEncoding.fit(table, f"{side}_features"))
            for side, table in (("user", user_features), ("item", item_features))
            if table is not None}


def by_rank(rows, feats, vals):
    """Feature values (triplets sorted by row, as ``FeatureEncoding.encode`` gives them)
    split by their place within their row: a list of (rows, features, values) whose rows
    are distinct, so that ``add_terms`` adds each part in one vectorized step."""
    if not len(rows):
        return []
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    order = np.argsort(rank, kind="stable")
    cuts = np.flatnonzero(np.diff(rank[order])) + 1
    return [(rows[i], feats[i], vals[i]) for i in np.split(order, cuts)]


def add_terms(out, ranked, weights, sign=1.0):
    """``out[v] += sign * sum_f x_vf weights[f]`` for the values of ``ranked`` (``by_rank``),
    each row's features added in their order: the same bits every time."""
    for rows, feats, vals in ranked:
        out[rows] += (sign * vals).reshape((-1,) + (1,) * (weights.ndim - 1)) * weights[feats]
    return out


def feature_sums(rows, feats, vals, weights, n_rows):
    """sum_g x_vg weights[g] of each row v < ``n_rows`` (float64, shape ``(n_rows,) +
    weights.shape[1:]``), from feature values as ``FeatureEncoding.encode`` gives them."""
    return add_terms(np.zeros((n_rows,) + weights.shape[1:]), by_rank(rows, feats, vals),
                     weights)


def _is_sparse_pair(table):
    return isinstance(table, tuple) and len(table) == 2


def table_ids(table, what):
    """The normalized raw ids of a feature table, or ValueError (wrong type, repeated id)."""
    if _is_sparse_pair(table):
        matrix, ids = table
        ids = normalize_ids(np.asarray(ids), f"{what} ids")
        if getattr(matrix, "ndim", 2) != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"{what}: the matrix has {matrix.shape[0]} rows for {len(ids)} ids")
    elif hasattr(table, "columns") and hasattr(table, "index"):
        ids = normalize_ids(np.asarray(table.index), f"{what} index")
    else:
        raise TypeError(f"{what} must be a pandas DataFrame indexed by id or a (matrix, ids) "
                        f"pair, got {type(table).__name__}")
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(same):
        a, b = order[same[0]], order[same[0] + 1]
        raise ValueError(f"{what}: id {plain(ids[a])!r} has two rows (rows {a} and {b}); "
                         "give one row per id")
    return ids


def _kind_of(column):
    """'numeric', 'categorical' or 'multi' for a pandas column."""
    import pandas as pd

    if column.dtype.kind in "iuf":
        return "numeric"
    if column.dtype.kind == "b" or isinstance(column.dtype, pd.CategoricalDtype):
        return "categorical"
    values = column.dropna()
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return "multi" if values.astype(str).str.contains(MULTI_SEPARATOR, regex=False).any() \
            else "categorical"
    for value in values:
        if isinstance(value, (list, tuple, set, frozenset)):
            return "multi"
        if isinstance(value, str) and MULTI_SEPARATOR in value:
            return "multi"
    return "categorical"


def _as_text(column):
    """A categorical column's cells as text (str of each value), missing ones as None."""
    import pandas as pd

    missing = column.isna().to_numpy()
    values = column.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values[~missing], skipna=True) not in ("string", "empty"):
        values = np.array([str(v) for v in values], dtype=object)
    values[missing] = None
    return pd.Series(values, index=column.index, dtype=object)


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _levels_of(value, kind):
    """The level names (text) one cell holds."""
    if _missing(value):
        return []
    if kind == "categorical":
        return [str(value)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value if not _missing(v)]
    return [v for v in str(value).split(MULTI_SEPARATOR) if v != ""]


def _finite_numbers(column, ids, what):
    """A numeric column as float64, or ValueError naming the first NaN/inf and its id."""
    values = np.asarray(column, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}: column {column.name!r} is {values[j]} for id "
                         f"{plain(ids[j])!r} (row {j}); numeric features must be finite "
                         f"({int(bad.sum())} such value(s))")
    return values


class FeatureEncoding:
    """The columns of one side's feature table: names, kinds, levels and numeric scaling
    (``fit`` learns them; ``encode`` applies them; ``to_state``/``from_state`` save them)."""

    def __init__(self, columns, levels):
        self.columns = columns  # [{"name", "kind", "n_levels" | "mean", "scale" | "width"}]
        self.levels = levels    # per column: list of level names (categorical, multi)
        sizes = [c["n_levels"] if c["kind"] in ("categorical", "multi")
                 else c.get("width", 1) for c in columns]
        self.group_ptr = np.zeros(len(columns) + 1, np.int64)
        np.cumsum(sizes, out=self.group_ptr[1:])
        self._index = [None] * len(columns)

    @property
    def n_features(self):
        return int(self.group_ptr[-1])

    def names(self):
        """A readable name per feature: ``column=level``, the numeric column's name, or
        ``column j`` of a matrix."""
        out = []
        for col, levels in zip(self.columns, self.levels):
            if col["kind"] == "sparse":
                out += [f"column {j}" for j in range(col["width"])]
            elif col["kind"] == "numeric":
                out.append(col["name"])
            else:
                out += [f"{col['name']}={level}" for level in levels]
        return out

    @classmethod
    def fit(cls, table, what):
        """The encoding of ``table`` (see the module docstring)."""
        import pandas as pd

        ids = table_ids(table, what)
        if _is_sparse_pair(table):
            return cls([{"name": None, "kind": "sparse", "width": int(table[0].shape[1])}],
                       [None])
        columns, levels = [], []
        for name in table.columns:
            column = table[name]
            kind = _kind_of(column)
            if kind == "numeric":
                values = _finite_numbers(column, ids, what)
                mean = float(values.mean()) if len(values) else 0.0
                spread = float(values.std()) if len(values) else 0.0
                columns.append({"name": str(name), "kind": kind, "mean": mean,
                                "scale": spread if spread > 0 else 1.0})
                levels.append(None)
                continue
            if kind == "categorical":
                text = _as_text(column).dropna().to_numpy()
                seen = np.sort(pd.unique(text).astype(str)).tolist()
            else:
                seen = sorted({level for value in column for level in _levels_of(value, kind)})
            columns.append({"name": str(name), "kind": kind, "n_levels": len(seen)})
            levels.append(seen)
        if not columns:
            raise ValueError(f"{what} has no columns")
        return cls(columns, levels)

    def _check_columns(self, table, what):
        if _is_sparse_pair(table) != (self.columns[0]["kind"] == "sparse"):
            raise ValueError(f"{what}: the model was fitted with "
                             f"{'a (matrix, ids) pair' if self.columns[0]['kind'] == 'sparse' else 'a DataFrame'}"
                             f", got {'a (matrix, ids) pair' if _is_sparse_pair(table) else 'a DataFrame'}")
        if _is_sparse_pair(table):
            if table[0].shape[1] != self.columns[0]["width"]:
                raise ValueError(f"{what}: the matrix has {table[0].shape[1]} columns, the "
                                 f"model was fitted with {self.columns[0]['width']}")
            return
        want, got = [c["name"] for c in self.columns], [str(c) for c in table.columns]
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        if missing or extra:
            raise ValueError(f"{what}: columns differ from those the model was fitted with "
                             f"({want}): missing {missing}, unexpected {extra}")

    def encode(self, table, ids, what):
        """Feature values of the rows of ``table`` whose id is in ``ids`` (normalized raw
        ids): triplets (position in ``ids``, feature, value), by position then feature,
        and a mask of the ids that have a table row. Ids without a table row get no
        features; unseen levels are dropped with one ``UnknownIdWarning`` counting them."""
        known = table_ids(table, what)
        self._check_columns(table, what)
        where = IdMap(known).lookup(ids, f"{what} ids") if len(known) else \
            np.full(len(ids), -1, np.int32)
        pos = np.flatnonzero(where >= 0)
        src = where[pos]
        parts, unseen = [], {}
        for j, col in enumerate(self.columns):
            rows, feats, vals = self._encode_column(j, col, table, known, src, what, unseen)
            parts.append((pos[rows], feats + self.group_ptr[j], vals))
        rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
        feats = np.concatenate([p[1] for p in parts]).astype(np.int64)
        vals = np.concatenate([p[2] for p in parts]).astype(np.float64)
        order = np.lexsort((feats, rows))
        if unseen:
            total = sum(unseen.values())
            detail = ", ".join(f"{n} in {name!r}" for name, n in unseen.items())
            warn(f"{what}: {total} value(s) of levels not seen in fit ({detail}) have no "
                 "feature", UnknownIdWarning)
        return (rows[order], feats[order], vals[order]), where >= 0

    def _encode_column(self, j, col, table, known, src, what, unseen):
        """(rows into ``src``, feature within the column, value) of column ``j``."""
        if col["kind"] == "sparse":
            return self._encode_matrix(table[0], src, what)
        column = table[col["name"]] if col["name"] in table.columns else \
            table[[c for c in table.columns if str(c) == col["name"]][0]]
        if col["kind"] == "numeric":
            values = _finite_numbers(column.iloc[src], known[src], what)
            return (np.arange(len(src)), np.zeros(len(src), np.int64),
                    (values - col["mean"]) / col["scale"])
        if col["kind"] == "categorical":
            return self._encode_categorical(j, col, column.iloc[src], unseen)
        if self._index[j] is None:
            self._index[j] = {level: n for n, level in enumerate(self.levels[j])}
        index, rows, feats, vals = self._index[j], [], [], []
        cells = column.to_numpy(dtype=object)[src]
        for r, value in enumerate(cells):
            known = []
            for level in _levels_of(value, col["kind"]):
                n = index.get(level)
                if n is None:
                    unseen[col["name"]] = unseen.get(col["name"], 0) + 1
                else:
                    known.append(n)
            known = sorted(set(known))
            if not known:
                continue
            rows += [r] * len(known)
            feats += known
            vals += [1.0 / len(known)] * len(known)
        return np.array(rows, np.int64), np.array(feats, np.int64), np.array(vals, np.float64)

    def _encode_categorical(self, j, col, column, unseen):
        """Column ``j`` of one level per cell, vectorized (a million levels is fine)."""
        import pandas as pd

        if self._index[j] is None:
            self._index[j] = pd.Index(self.levels[j])
        text = _as_text(column)
        codes = self._index[j].get_indexer(text)
        missing = text.isna().to_numpy()
        lost = int(((codes < 0) & ~missing).sum())
        if lost:
            unseen[col["name"]] = unseen.get(col["name"], 0) + lost
        rows = np.flatnonzero(codes >= 0)
        return rows, codes[rows].astype(np.int64), np.ones(len(rows))

    @staticmethod
    def _encode_matrix(matrix, src, what):
        """The nonzeros of rows ``src`` of a sparse or dense matrix, checked finite."""
        if hasattr(matrix, "tocsr"):
            sub = matrix.tocsr()[src].tocoo()
            rows, feats, vals = sub.row, sub.col, np.asarray(sub.data, np.float64)
        else:
            dense = np.asarray(matrix, dtype=np.float64)[src]
            rows, feats = np.nonzero(dense)
            vals = dense[rows, feats]
        bad = ~np.isfinite(vals)
        if bad.any():
            raise ValueError(f"{what}: the matrix holds {vals[bad][0]} at row {src[rows[bad][0]]}, "
                             f"column {feats[bad][0]}; features must be finite")
        return rows.astype(np.int64), feats.astype(np.int64), vals

    # --- persistence ----------------------------------------------------------------

    def to_state(self, prefix):
        """Arrays for the model file: the columns as JSON text and all levels as one
        text array (``prefix`` + "_encoding", "_levels")."""
        levels = [level for group in self.levels if group for level in group]
        return {f"{prefix}_encoding": np.str_(json.dumps(self.columns)),
                f"{prefix}_levels": np.array(levels, dtype=str) if levels else
                np.zeros(0, dtype="<U1")}

    @classmethod
    def from_state(cls, state, prefix):
        """The encoding saved by ``to_state``, checked (ValueError names the problem)."""
        columns = json.loads(str(state[f"{prefix}_encoding"]))
        levels_arr = state[f"{prefix}_levels"]
        if not isinstance(columns, list) or not columns:
            raise ValueError(f"{prefix}_encoding must list the columns")
        levels, at = [], 0
        for col in columns:
            kind = col.get("kind") if isinstance(col, dict) else None
            if kind in ("categorical", "multi"):
                n = col.get("n_levels")
                if not isinstance(n, int) or n < 0 or at + n > len(levels_arr):
                    raise ValueError(f"{prefix}_encoding: bad level count {n!r}")
                levels.append([str(v) for v in levels_arr[at:at + n]])
                at += n
            elif kind == "numeric" and all(isinstance(col.get(key), (int, float))
                                           and math.isfinite(col[key]) for key in ("mean", "scale")):
                levels.append(None)
            elif kind == "sparse" and isinstance(col.get("width"), int) and col["width"] >= 0:
                levels.append(None)
            else:
                raise ValueError(f"{prefix}_encoding: bad column {col!r}")
        if at != len(levels_arr):
            raise ValueError(f"{prefix}_levels holds {len(levels_arr)} levels, the columns "
                             f"{at}")
        return cls(columns, levels)
