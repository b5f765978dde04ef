"""Fuzzing the readers and the model loader: mutated inputs, and what each may do with them.

``read_ratings`` gets rating files in every layout it reads (``::``, tab, comma with and
without a header, ``;``, whitespace; 3 or 4 columns; LF, CRLF; plain, gzip, bz2, xz and
zip), mutated before or after compression. It may raise ``ValueError`` and nothing else;
when it returns, the frame must be what the text says: one row per non-blank data line
(or, with ``on_bad_lines="skip"``, the rows plus the skipped lines counted in its
warning), the documented columns and dtypes, finite ratings, and, whenever every line is
in a strict plain form that a short reference parser here reads, exactly its values.

``mfcore.load`` gets saved models (SGD, ALS, Bayesian; integer and string ids; unfitted)
with bytes flipped, inserted, removed or cut, and with members replaced, removed or added
and the digest re-signed (so the checks behind the digest are reached). It may raise
``ModelFileError`` and nothing else; a model it returns must equal the saved one when the
stored arrays are unchanged, and must predict and recommend (finite scores) in any case.

``tests/test_fuzz.py`` runs a bounded number of examples in the suite; ``benchmarks/fuzz.py``
runs many more and reports counts.
"""
import bz2
import gzip
import io
import json
import lzma
import os
import re
import warnings
import zipfile

import numpy as np
from hypothesis import HealthCheck, settings, strategies as st

import mfcore
from mfcore import ModelFileError, persistence
from mfcore.errors import BadLinesWarning
from mfcore.io import ALIASES, read_ratings

# --- rating files ----------------------------------------------------------------------

#: the longest an error message may be: values and lines in it are cut (a megabyte line
#: must not become a megabyte message); the longest names every known header alias
MAX_MESSAGE = 2000

SEPARATORS = ["::", "\t", ",", ";", " "]
COMPRESSIONS = ["", ".gz", ".bz2", ".xz", ".zip"]
#: the methods a rating file's zip member may use (the readers take every one)
ZIP_METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
HEADERS = {4: "userId{s}movieId{s}rating{s}timestamp", 3: "user{s}item{s}rating"}
#: bytes that make a parser work: separators, line ends, signs, quotes, exponents, junk
NASTY = [b"\n", b"\r", b"\r\n", b":", b"::", b"\t", b",", b";", b" ", b"-", b"+", b".", b"e",
         b"E", b'"', b"nan", b"inf", b"0", b"9", b"99999999999999999999", b"\x00", b"\xff",
         b"\xef\xbb\xbf", b"#", b"user", b"1e308", b"\xc3\xa9", b"\x0b", b"\x0c", b"\x1c",
         b"\xc2\x85", b"\xc2\xa0", b"_", b"1_0", b"\t\t",
         "\uff15".encode(), "\u0664".encode(), b"1e39", b"1e-320", b"1e-400", b"3.4028236e38", b"1e-46",
         b"\xff\xfe", b"5" * 3000, b"u" * 70_000]

ROW = st.tuples(st.integers(-2**31, 2**40), st.integers(0, 2**31 - 1),
                st.sampled_from(["1", "2.5", "4.", "0.5", "5", "-1", "3.25", ".5", "10"]),
                st.integers(0, 2**33))


@st.composite
def rating_files(draw):
    """(file name, file bytes, plain text before mutation or None, on_bad_lines)."""
    rows = draw(st.lists(ROW, min_size=1, max_size=12))
    sep = draw(st.sampled_from(SEPARATORS))
    cols = draw(st.sampled_from([3, 4]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.booleans()) and sep != "::"
    text = (HEADERS[cols].format(s=sep) + eol if header else "") + "".join(
        sep.join(map(str, row[:cols])) + eol for row in rows)
    data = text.encode()
    compression = draw(st.sampled_from(COMPRESSIONS))
    before = compression == "" or draw(st.booleans())   # mutate the text, or the archive
    if before:
        data = _mutate(draw, data)
    packed = _compress(data, compression, draw(st.sampled_from(ZIP_METHODS)))
    if not before:
        packed = (_mutate_zip_directory(draw, packed)
                  if compression == ".zip" and draw(st.booleans()) else _mutate(draw, packed))
    on_bad_lines = draw(st.sampled_from(["error", "error", "skip"]))
    return "ratings.dat" + compression, packed, data if before else None, on_bad_lines


def _mutate_zip_directory(draw, data):
    """Set the version needed, the flags or the compression method of one member in a zip's
    central directory (random flips rarely hit these bytes, which zipfile checks first)."""
    data = bytearray(data)
    entries = [i for i in range(len(data) - 12) if data[i:i + 4] == b"PK\x01\x02"]
    if entries:
        at = draw(st.sampled_from(entries)) + draw(st.sampled_from([6, 8, 10]))
        data[at:at + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "little")
    return bytes(data)


def _compress(data, compression, zip_method=zipfile.ZIP_DEFLATED):
    if compression == ".gz":
        return gzip.compress(data, mtime=0)
    if compression == ".bz2":
        return bz2.compress(data)
    if compression == ".xz":
        return lzma.compress(data)
    if compression == ".zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zip_method) as archive:
            archive.writestr("ml/ratings.dat", data)
        return buffer.getvalue()
    return data


def _mutate(draw, data):
    """0 to 4 random edits: flip, insert (random or nasty bytes), delete, duplicate, cut."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "nasty", "delete", "duplicate", "cut"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "nasty":
            data[at:at] = draw(st.sampled_from(NASTY))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 30))]
        elif kind == "cut":
            del data[at:]
    return bytes(data)


_LINE_END = re.compile(r"\r\n|\r|\n")
_INT = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)")


def _lines(text):
    lines = _LINE_END.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


_BLANKS = " \t\r\n"   # what pandas' C parser takes for blank (not Python's str.strip)


def _fields(line, sep):
    return re.split(r"[ \t]+", line.strip(" \t")) if sep == " " else line.split(sep)


def reference_parse(text, sep, header, n_fields):
    """(users, items, ratings, timestamps) of a file whose every line is plain, or None.

    Plain: separated by ``sep``, integer ids and timestamp (at most 18 digits), a decimal
    rating (no exponent), no spaces around fields (a whitespace file: single spaces),
    no blank line holding a separator; the readers must read such a file exactly so.
    """
    lines = [ln for ln in _lines(text) if ln.strip(_BLANKS)]
    if header:
        lines = lines[1:]
    rows = []
    for line in lines:
        fields = _fields(line, sep)
        if sep == " " and line != " ".join(fields):
            return None
        if len(fields) != n_fields:
            return None
        *ids, rating = fields[:3]
        if not all(_INT.fullmatch(f) for f in ids) or not _DECIMAL.fullmatch(rating):
            return None
        if n_fields == 4 and not _INT.fullmatch(fields[3]):
            return None
        rows.append((int(ids[0]), int(ids[1]), float(rating),
                     int(fields[3]) if n_fields == 4 else 0))
    if not rows:
        return None
    return tuple(np.array(c) for c in zip(*rows))


def data_line_count(text, sep, header):
    """Non-blank lines after the header, as the readers count them."""
    lines = [ln for ln in _lines(text)
             if ln.strip(_BLANKS) or (sep != " " and sep[0] in ln)]
    return len(lines) - (1 if header else 0)


def check_rating_file(folder, name, data, text_bytes, on_bad_lines):
    """Read one (mutated) file; fail unless the outcome is allowed (see the module docstring)."""
    path = os.path.join(folder, name)
    with open(path, "wb") as fh:
        fh.write(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = read_ratings(path, on_bad_lines=on_bad_lines)
        except ValueError as exc:
            assert str(exc), "an error without a message"
            assert len(str(exc)) < MAX_MESSAGE, f"a message of {len(str(exc)):,} characters"
            return "error"
    skipped = 0
    for w in caught:
        assert issubclass(w.category, (BadLinesWarning, UserWarning)), w
        found = re.search(r"skipped (\d+) bad line", str(w.message))
        if found:
            skipped = int(found.group(1))
    assert on_bad_lines == "skip" or not skipped
    _check_frame(frame)
    if text_bytes is None:  # a mutated archive that still decompressed: nothing to compare
        return "read"
    try:
        text = text_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return "read"
    if '"' in text or "\x00" in text:  # quoting (a field may span lines), NULs: counts differ
        return "read"
    text = text.lstrip("\ufeff")
    sep = _detected_separator(text)
    if sep is None:
        return "read"
    header = _has_header(text, sep)
    expected_rows = data_line_count(text, sep, header)
    assert len(frame) + skipped == expected_rows, (
        f"{len(frame)} rows + {skipped} skipped from {expected_rows} data lines:\n{text!r}")
    if not skipped and frame["user"].dtype.kind in "iu":
        ref = reference_parse(text, sep, header, len(frame.columns))
        if ref is not None:
            users, items, ratings, stamps = ref
            np.testing.assert_array_equal(frame["user"].to_numpy(), users)
            np.testing.assert_array_equal(frame["item"].to_numpy(), items)
            np.testing.assert_allclose(frame["rating"].to_numpy(), ratings, rtol=1e-6)
            if "timestamp" in frame:
                np.testing.assert_array_equal(frame["timestamp"].to_numpy(), stamps)
    return "read"


def _detected_separator(text):
    """The separator the readers detect from the first non-blank line (None when unsure)."""
    first = next((ln for ln in _lines(text) if ln.strip(_BLANKS)), None)
    if first is None:
        return None
    for sep in ("::", "\t", ",", ";"):
        if sep in first:
            return sep
    return " "


def _has_header(text, sep):
    first = next(ln for ln in _lines(text) if ln.strip(_BLANKS))
    fields = [f.strip(" \t") for f in _fields(first, sep)]

    def number(f):  # as pandas reads numbers: no '_', no whitespace but spaces and tabs
        try:
            float(f)
        except ValueError:
            return False
        return "_" not in f and f == f.strip()
    if len(fields) < 2 or not all(f and not number(f) for f in fields):
        return False
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    return len(fields) >= 3 or all(f.strip('"').lower() in known for f in fields)


def _check_frame(frame):
    columns = list(frame.columns)
    assert columns in (["user", "item", "rating"], ["user", "item", "rating", "timestamp"]), columns
    assert len(frame) > 0
    for column in ("user", "item"):
        kind = str(frame[column].dtype)
        assert kind in ("int32", "int64", "category"), (column, kind)
    assert frame["rating"].dtype == np.float32
    assert np.isfinite(frame["rating"].to_numpy()).all()
    if "timestamp" in frame:
        assert frame["timestamp"].dtype == np.int64


# --- model files ----------------------------------------------------------------------

def saved_models(folder):
    """name -> (bytes of a saved model, the model): the kinds of file ``load`` meets."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 30, 300), rng.integers(1, 20, 300)
    ratings = rng.integers(1, 6, 300).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "sgd": mfcore.Model(k=3, epochs=3).fit(users, items, ratings),
            "als": mfcore.ALS(k=2, iterations=2).fit(users, items, ratings),
            "bayes": mfcore.BayesianMF(k=2, n_samples=3, burn_in=1).fit(users, items, ratings),
            "bayes_summary": mfcore.BayesianMF(k=2, n_samples=3, burn_in=1, posterior_mb=0).fit(
                users, items, ratings),
            "str": mfcore.Model(k=2, epochs=2, dtype="float64").fit(
                [f"u{u}" for u in users], [f"i{i}" for i in items], ratings),
            "unfitted": mfcore.Model(k=5),
        }
    out = {}
    for name, model in models.items():
        path = os.path.join(folder, f"{name}.mfz")
        model.save(path)
        with open(path, "rb") as fh:
            out[name] = (fh.read(), model)
    return out


def _members(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _pack(arrays, sign):
    if sign:
        arrays.pop("digest", None)
        arrays["digest"] = np.str_(persistence._digest(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


#: what a replaced member may become
def _replacements(value):
    return st.sampled_from([
        ("empty", lambda v: np.zeros(0, dtype=v.dtype)),
        ("scalar", lambda v: np.asarray(v).ravel()[:1].reshape(()) if np.asarray(v).size
         else np.float64(1)),
        ("longer", lambda v: np.concatenate([np.ravel(v), np.ravel(v)[:1]]) if np.ndim(v)
         else np.array([v, v])),
        ("shorter", lambda v: v[:-1] if np.ndim(v) and len(v) else v),
        ("float32", lambda v: np.asarray(v).astype(np.float32) if np.asarray(v).dtype.kind in "iuf"
         else np.float32(1)),
        ("float64", lambda v: np.asarray(v).astype(np.float64) if np.asarray(v).dtype.kind in "iuf"
         else np.float64(1)),
        ("int64", lambda v: np.asarray(v).astype(np.int64) if np.asarray(v).dtype.kind in "iuf"
         else np.int64(1)),
        ("int32", lambda v: np.asarray(v).astype(np.int32) if np.asarray(v).dtype.kind in "iuf"
         else np.int32(-1)),
        ("nan", lambda v: np.where(np.arange(np.size(v)).reshape(np.shape(v)) == 0, np.nan, v)
         if np.asarray(v).dtype.kind == "f" else v),
        ("huge", lambda v: np.full(np.shape(v), 1e38, dtype=v.dtype)
         if np.asarray(v).dtype.kind == "f" else v),
        ("negative", lambda v: -np.abs(v) - 1 if np.asarray(v).dtype.kind in "iuf" else v),
        ("2d", lambda v: np.atleast_2d(v)),
        ("transposed", lambda v: np.ascontiguousarray(np.atleast_2d(v).T)),
        ("text", lambda v: np.str_("x")),
        ("json", lambda v: np.str_(json.dumps({"bit_generator": "PCG64"}))),
        ("json-list", lambda v: np.str_("[1, 2, 3]")),
        ("json-null", lambda v: np.str_("null")),
        ("bytes", lambda v: np.bytes_(b"\xff\xfe")),
        ("strings", lambda v: np.array(["a"] * max(np.size(v), 1))),
        ("bool", lambda v: np.bool_(True)),
        ("reversed", lambda v: np.ascontiguousarray(v[::-1]) if np.ndim(v) else v),
        ("big-int", lambda v: np.int64(2**62)),
        ("deep-json", lambda v: np.str_("[" * 100_000 + "]" * 100_000)),
        ("deep-object", lambda v: np.str_('{"a":' * 50_000 + "1" + "}" * 50_000)),
    ])


@st.composite
def model_files(draw, saved):
    """(mutated bytes, the original model or None when it may differ, kind of mutation)."""
    name = draw(st.sampled_from(sorted(saved)))
    data, model = saved[name]
    kind = draw(st.sampled_from(["bytes", "member", "member", "member", "json", "drop", "add",
                                 "zip", "compressed"]))
    if kind == "bytes":
        return _mutate(draw, data), model, kind
    if kind == "zip":
        return _mutate_zip_directory(draw, data), model, kind
    if kind == "compressed":   # one member (or all) compressed: save never writes that
        method = draw(st.sampled_from(ZIP_METHODS[1:]))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            which = draw(st.sampled_from(names + [None]))
            return _repack(archive, lambda name: method if which in (None, name)
                           else zipfile.ZIP_STORED), None, kind
    arrays = _members(data)
    sign = draw(st.sampled_from([True, True, True, False]))
    if kind == "drop":
        arrays.pop(draw(st.sampled_from(sorted(arrays))))
    elif kind == "add":
        arrays[draw(st.sampled_from(["state.extra", "extra", "state.seen_indptr"]))] = np.arange(3)
    elif kind == "json":
        member = draw(st.sampled_from(["params", "state.history", "state.training"]))
        if member not in arrays:
            member = "params"
        doc = json.loads(str(arrays[member]))
        doc = _mutate_json(draw, doc)
        arrays[member] = np.str_(json.dumps(doc))
    else:
        member = draw(st.sampled_from(sorted(arrays)))
        label, change = draw(_replacements(arrays[member]))
        with np.errstate(all="ignore"):
            arrays[member] = change(arrays[member])
    return _pack(arrays, sign), None, kind


def _repack(archive, method_of):
    """The bytes of a copy of zip ``archive`` whose member ``name`` uses ``method_of(name)``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in archive.infolist():
            copy = zipfile.ZipInfo(info.filename, info.date_time)
            copy.compress_type = method_of(info.filename)
            out.writestr(copy, archive.read(info))
    return buffer.getvalue()


def _mutate_json(draw, doc):
    """Replace, drop or retype one value somewhere in a JSON document."""
    if isinstance(doc, dict) and doc:
        key = draw(st.sampled_from(sorted(doc)))
        action = draw(st.sampled_from(["drop", "replace", "recurse"]))
        if action == "drop":
            doc.pop(key)
        elif action == "recurse":
            doc[key] = _mutate_json(draw, doc[key])
        else:
            doc[key] = draw(st.sampled_from([None, -1, 0, 2**70, 1.5, "x", [], {}, True,
                                             float("1e308")]))
        return doc
    if isinstance(doc, list) and doc:
        at = draw(st.integers(0, len(doc) - 1))
        doc[at] = _mutate_json(draw, doc[at])
        return doc
    return draw(st.sampled_from([None, -1, 0, 2**70, 1.5, "x", [], {}, True]))


def check_model_file(folder, data, original):
    """Load one (mutated) model file; fail unless the outcome is allowed."""
    path = os.path.join(folder, "fuzzed.mfz")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mfcore.load(path)
    except ModelFileError as exc:
        assert str(exc) and len(str(exc)) < MAX_MESSAGE, len(str(exc))
        return "error"
    if not hasattr(model, "user_factors_"):
        model.get_params()
        if original is not None and not hasattr(original, "user_factors_"):
            assert model.get_params() == original.get_params()
        return "loaded"
    users, items = model.user_map_.ids[:5], model.item_map_.ids[:5]
    n = min(len(users), len(items))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict(users[:n], items[:n])
        assert pred.shape == (n,) and np.isfinite(pred).all()
        if len(users):
            top, scores = model.recommend(users[0], n=3,  # a file may lack the seen items
                                          exclude_seen=model.seen_indptr_ is not None)
            assert len(top) == len(scores) <= 3
            assert np.isfinite(scores).all()
    if original is not None and hasattr(original, "user_factors_"):
        np.testing.assert_array_equal(pred, original.predict(users[:n], items[:n]))
    return "loaded"


def fuzz_settings(examples, derandomize=True):
    """Hypothesis settings for ``examples`` inputs, no example database, no deadline;
    derandomized (the same inputs every run: the suite) unless asked (benchmarks/fuzz.py)."""
    return settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                    suppress_health_check=list(HealthCheck))


# --- Parquet files ------------------------------------------------------------------------

PARQUET_NAMES = {"user": ["user", "userId", "customer_id"], "item": ["item", "movieId", "iid"],
                 "rating": ["rating", "score"], "timestamp": ["timestamp", "ts"]}
_PARQUET_VALUES = {
    "int": st.integers(-2**40, 2**40),
    "float": st.one_of(st.integers(-2**20, 2**20).map(float),
                       st.floats(allow_nan=True, allow_infinity=True, width=64)),
    "str": st.text(alphabet="ab1 ", min_size=0, max_size=3),
}


@st.composite
def parquet_files(draw):
    """(bytes of a Parquet file, its source frame or None when the bytes were mutated)."""
    import pandas as pd

    n = draw(st.integers(1, 8))
    clean = draw(st.booleans())   # half are valid files of integer ids and small ratings
    columns = {}
    for column in ("user", "item", "rating", "timestamp"):
        if column == "timestamp" and draw(st.booleans()):
            continue
        if column == "rating" and not clean and not draw(st.integers(0, 9)):
            continue                                 # no rating column: an error
        kind = "int" if clean else draw(st.sampled_from(["int", "int", "float", "str"]))
        values = draw(st.lists(_PARQUET_VALUES[kind], min_size=n, max_size=n))
        if clean and column == "rating":
            values = [v % 11 / 2 for v in values]
        columns[draw(st.sampled_from(PARQUET_NAMES[column]))] = pd.Series(values)
    frame = pd.DataFrame(columns)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    if draw(st.integers(0, 3)) == 0:
        return _mutate(draw, data), None
    return data, frame


def check_parquet_file(folder, data, source):
    """Read one Parquet file; fail unless it is a ValueError or the source's exact values."""
    path = os.path.join(folder, "ratings.parquet")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        frame = read_ratings(path)
    except ValueError as exc:
        assert str(exc)
        return "error"
    _check_frame(frame)
    if source is None:
        return "read"
    by_column = {}
    for name in source.columns:
        for column, names in PARQUET_NAMES.items():
            if name in names:
                by_column[column] = source[name]
    for column in ("user", "item"):
        got, want = frame[column], by_column[column]
        if got.dtype.kind in "iu":   # numbers in, the same integers out (never truncated)
            want = want.to_numpy(dtype=np.float64)
            assert np.isfinite(want).all() and (want == np.round(want)).all(), (column, want)
            np.testing.assert_array_equal(got.to_numpy(dtype=np.float64), want)
        else:
            assert list(got.astype(str)) == list(want.astype(str)), column
    want = by_column["rating"].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(frame["rating"].to_numpy(), want.astype(np.float32), rtol=0)
    return "read"


# --- string ids: read -> fit -> save -> load -> predict -> CLI output ------------------------

#: ids that number parsing, whitespace rules or Unicode could silently change or merge
ID_TEXTS = ["0", "7", "007", "0042", "42", "1e3", "1E3", "1000", "+7", "-0", "-7", "1.0", "1.",
            ".5", "inf", "nan", "NaN", "True", "0x10", "1_0", "\uff15", "\u0664\u0662", "\u00e9",
            "u1", "\U0001f600", "0" * 30, "9" * 25, "-", "+", "e"]
_ID = st.one_of(st.sampled_from(ID_TEXTS),
                st.text(alphabet="0123456789+-.eE_x\u00e9\uff15", min_size=1, max_size=6))


@st.composite
def string_id_files(draw):
    """(separator, users, items, ratings): rating lines whose ids are text, many of them
    numeric-looking (the separators, quotes and spaces are not in their alphabet)."""
    n = draw(st.integers(2, 12))
    users = draw(st.lists(_ID, min_size=n, max_size=n))
    items = draw(st.lists(_ID, min_size=n, max_size=n))
    ratings = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    return draw(st.sampled_from([",", "\t", "::", ";"])), users, items, ratings


def check_string_ids(folder, sep, users, items, ratings):
    """The ids come back byte for byte from ``read_ratings(ids="str")``, a fit, save and
    load, ``predict``, and the CSV ``mfcore predict`` writes; "auto" reads integers only
    when every id is written as its plain decimal (else "007" and "7" would merge)."""
    import contextlib
    import csv

    from mfcore import cli

    path = os.path.join(folder, "ids.txt")
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{u}{sep}{i}{sep}{r}\n" for u, i, r in zip(users, items, ratings))
    frame = read_ratings(path, ids="str")
    assert list(frame["user"].astype(str)) == users and list(frame["item"].astype(str)) == items
    try:
        auto = read_ratings(path)
    except ValueError as exc:   # e.g. a '+' or '-' id alone, which "auto" takes for a number
        assert len(str(exc)) < MAX_MESSAGE
    else:
        for column, ids in (("user", users), ("item", items)):
            if auto[column].dtype.kind in "iu":
                assert [str(int(v)) for v in ids] == ids, (column, ids)
            else:
                assert list(auto[column].astype(str)) == ids, (column, ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mfcore.Model(k=2, epochs=2, seed=0).fit(users, items, ratings)
        model_path = os.path.join(folder, "ids.mfz")
        model.save(model_path)
        loaded = mfcore.load(model_path)
        assert sorted(loaded.user_map_.ids.tolist()) == sorted(set(users))
        np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main(["predict", model_path, path])
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:2] == ["user", "item"]
    assert [row[0] for row in rows[1:]] == users and [row[1] for row in rows[1:]] == items
    return "round trip"


# --- the command line's values ----------------------------------------------------------------

#: values a careless or hostile command line gives an option
NASTY_VALUES = ["0", "-1", "1", "2", "1e308", "nan", "inf", "-inf", "1e-320", "", " ", "abc",
                "1,2", "1,,2", "\uff11", "0x10", "1_0", "True", "None", "[1]", "{}", "9" * 30,
                "x" * 5000, "--", "-", "=", "k=1", "k=1,2", "lr=nan", "\x00", "\u00e9", "1e3",
                "0.5", "-0.0", "99999999999999999999", "ml-100k/u.data", "/dev/zero"]
#: options whose large values make a run long (epochs, k for ALS...): small or non-numeric only
COSTLY = {"--k", "--epochs", "--iterations", "--n-samples", "--burn-in", "--thin", "--n-iter",
          "--cv", "--cg-steps", "--block-grid", "--n-iter-no-change", "--n-threads"}
_SMALL = st.sampled_from(["0", "1", "2", "3", "-1", "abc", "", "nan", "1.5", "\uff12", "1e0",
                          "2,3", "10**12", str(10**12)])
_VALUE = st.one_of(st.sampled_from(NASTY_VALUES), st.integers(-10**20, 10**20).map(str),
                   st.floats().map(repr), st.text(max_size=8))
#: flags never fuzzed: output paths (fixed below), help and the traceback switch
_FIXED = {"-h", "--help", "-o", "--output", "--results", "--traceback"}


def cli_options():
    """{command: [(flag, takes a value)]} of the parser (demo left out: it downloads)."""
    from mfcore.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: [(a.option_strings[-1], a.nargs != 0) for a in sub._actions
                   if a.option_strings and not _FIXED & set(a.option_strings)]
            for name, sub in commands.choices.items() if name != "demo"}


def cli_files(folder):
    """The files the command lines work on: a small ratings file (train), a model trained
    on it, a pairs file, and an output path."""
    rng = np.random.default_rng(0)
    train = os.path.join(folder, "train.csv")
    with open(train, "w") as fh:
        fh.writelines(f"{u},{i},{r}\n" for u, i, r in zip(
            rng.integers(1, 30, 300), rng.integers(1, 20, 300), rng.integers(1, 6, 300)))
    pairs = os.path.join(folder, "pairs.csv")
    with open(pairs, "w") as fh:
        fh.write("1,1\n2,3\n999,1\n")
    model = os.path.join(folder, "model.mfz")
    frame = read_ratings(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mfcore.Model(k=3, epochs=3, seed=0).fit(frame.user, frame.item, frame.rating).save(model)
    return {"train": train, "pairs": pairs, "model": model,
            "out": os.path.join(folder, "out.mfz")}


@st.composite
def command_lines(draw, options, files):
    """An argv: a command, its positional arguments (mostly the real files) and 0-5 options
    with hostile values (``files``: train, model, pairs and output paths)."""
    command = draw(st.sampled_from(sorted(options)))
    positional = {
        "train": [files["train"]], "tune": [files["train"]],
        "evaluate": [files["model"], files["train"]], "predict": [files["model"], files["pairs"]],
        "recommend": [files["model"], draw(st.sampled_from(["1", "2", "999", "x", "-1"]))],
        "similar": [files["model"], draw(st.sampled_from(["1", "3", "999", "x"]))],
        "info": [files["model"]]}[command]
    if draw(st.integers(0, 9)) == 0:   # now and then a hostile positional argument
        at = draw(st.integers(0, len(positional) - 1))
        positional[at] = draw(st.sampled_from(NASTY_VALUES))
    argv = [command, *positional]
    if command == "train":
        argv += ["-o", files["out"], "--epochs", "2", "--iterations", "2", "--n-samples", "3",
                 "--burn-in", "1"]
    for flag, takes_value in draw(st.lists(st.sampled_from(options[command]), max_size=5)):
        argv.append(flag)
        if takes_value:
            argv.append(draw(_SMALL if flag in COSTLY else _VALUE))
    return argv


def check_command_line(argv, seconds=30):
    """Run ``mfcore`` with ``argv`` in this process: exit code 0, 1 (a one-line error naming
    the problem) or 2 (a usage error); never a traceback, a hang (``seconds``) or a long
    message."""
    import contextlib
    import signal

    from mfcore import cli

    def too_long(*_):
        raise TimeoutError(f"mfcore {' '.join(argv)[:300]} ran over {seconds} s")
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(seconds)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = cli.main(argv)
            except SystemExit as exc:   # argparse: a usage error (2)
                code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    errors = err.getvalue()
    assert code in (0, 1, 2), (code, argv, errors[-2000:])
    assert "Traceback" not in errors, errors[-3000:]
    if code:
        last = errors.strip().splitlines()[-1]
        assert "error" in last and len(last) < MAX_MESSAGE, (argv, last[:500], len(last))
    return f"exit {code}"
