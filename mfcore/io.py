"""Rating-file readers: MovieLens ``::``, tab, comma (with or without header), compressed, Parquet.

``read_ratings(path)`` returns a pandas DataFrame with columns ``user``,
``item``, ``rating`` and, when the file has a fourth column, ``timestamp``.
Integer ids become int32 (int64 when they do not fit), string ids a
``category``; ratings are float32, timestamps int64.

Text is parsed by compiled code, never by pandas' Python engine. A file of
plain lines (integer ids, a decimal rating, an integer timestamp, separated by
``::``, tab, comma or semicolon) goes through a small Cython parser
(``_kernels/readers.pyx``), faster than pandas' C engine reads the same data as CSV.
Any other file, or one with something unusual in it (quotes, spaces, an
exponent...), goes through pandas' C engine; a ``::`` file with ``:`` as the
separator and only the real fields converted (``usecols``), with a count of
the colons to catch lines with extra fields. (The one corruption that path
cannot see is a line with single colons in exactly the places of the ``::``,
e.g. ``1:7:2:7:5:7:9``, read as ``1::2::5::9``; the compiled parser refuses it.)

Input is checked, never silently cleaned: a short or long line, a
non-numeric or missing rating, a non-integer id or timestamp, an empty or
missing file raise ``ValueError`` (``FileNotFoundError`` for a missing file)
naming the file and the line. ``on_bad_lines="skip"`` drops bad lines
instead, with a warning that counts them.
"""
from __future__ import annotations

import bz2
import codecs
import contextlib
import copy
import gzip
import io
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._kernels.readers import parse_block
from .errors import BadLinesWarning, Message, Setting, shown, warn
from .ids import MAX_ID_LENGTH

if TYPE_CHECKING:
    import pandas as pd

    from ._typing import PathLike

__all__ = ["read_ratings", "read_pairs", "RatingChunks"]

COLUMNS = ("user", "item", "rating", "timestamp")
SEPARATORS = {"::": "::", "\t": "\t", "tab": "\t", ",": ",", "comma": ",", ";": ";",
              " ": "whitespace", "whitespace": "whitespace"}
# header names people use for each column, compared in lower case
ALIASES = {
    "user": ("user", "userid", "user_id", "uid", "customer", "customerid", "customer_id"),
    "item": ("item", "itemid", "item_id", "iid", "movie", "movieid", "movie_id"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime"),
}
COMPRESSED = (".gz", ".bz2", ".xz", ".lzma", ".zip")
RATING_FILES = ("ratings.dat", "ratings.csv", "u.data", "ratings.parquet")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_SNIFF_BYTES = 1 << 16
#: the most a compressed file may inflate relative to its size: deflate's best is
#: 1032:1, and ratings text compresses far less with any method
MAX_RATIO = 1100
_FAST_BLOCK = 1 << 23   # bytes the compiled '::' parser takes at a time
#: no plain line (four numbers of at most 18 digits) is longer: a longer one goes to the
#: general reader at once (gathering a giant line block by block took quadratic time)
_FAST_LINE = 1 << 12
#: the longest line a rating file may have (characters); a longer one is an error naming it
MAX_LINE = 1 << 20
#: float32, the ratings' type: a rating beyond its largest finite value is refused, and so is
#: a non-zero one below its smallest subnormal (it would silently read as 0)
_F32 = np.finfo(np.float32)


# --- opening files ----------------------------------------------------------------------

def _opener(path, member):
    """A function that opens ``path`` as a binary stream, decompressing by extension.

    Decompression is bounded (see ``_Bounded``): a file of a few KB that inflates to
    gigabytes (a "zip bomb") stops with a ``ValueError`` after at most ``MAX_RATIO``
    times its size, before it can exhaust memory.
    """
    lower = path.lower()
    for suffixes, open_compressed in ((".gz", gzip.open), (".bz2", bz2.open),
                                      ((".xz", ".lzma"), lzma.open)):
        if lower.endswith(suffixes):
            limit = MAX_RATIO * max(os.path.getsize(path), 1)
            return lambda: _Bounded(open_compressed(path, "rb"), path, limit,
                                    f"{MAX_RATIO} times its size: a decompression bomb?")
    if lower.endswith(".zip"):
        name = _zip_member(path, member)
        return lambda: _open_zip_member(path, name)
    return lambda: open(path, "rb")


def _open_zip_member(path, name):
    """Member ``name`` of zip ``path`` as a stream that inflates at most its declared size.

    zipfile inflates stored and deflate members within each read's size and stops at the
    declared size; bzip2 and lzma members it inflates a whole compressed chunk at a time
    without a bound (4 KB of bzip2 can hold gigabytes), so those are read raw and
    inflated here, a bounded amount per read, the CRC checked at the end.
    """
    archive = zipfile.ZipFile(path)
    try:
        info = archive.getinfo(name)
        where = f"{path}: {name}"
        if info.flag_bits & 0x1:
            raise ValueError(f"{where} is encrypted; decrypt the archive first")
        if info.compress_type not in _ZIP_METHODS:
            raise ValueError(f"{where} uses zip compression method {info.compress_type}, which "
                             "cannot be read here (stored, deflate, bzip2 and lzma can)")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ValueError(f"{where} declares {info.file_size:,} bytes in {info.compress_size:,}"
                             f": over {MAX_RATIO} times smaller than its data, more than any "
                             "compressor gives ratings text (a decompression bomb?)")
        if info.compress_type in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
            raw = copy.copy(info)
            raw.compress_type, raw.file_size, raw.CRC = zipfile.ZIP_STORED, info.compress_size, None
            stream = archive.open(raw)
            stream = (bz2.BZ2File(stream) if info.compress_type == zipfile.ZIP_BZIP2
                      else _zip_lzma(stream, where, info.file_size))
        else:  # (zipfile checks the CRC of these)
            try:
                stream = archive.open(name)
            except NotImplementedError as exc:  # patched data, strong encryption...
                raise ValueError(f"{where} cannot be read here ({exc})") from None
            return _Bounded(stream, where, info.file_size, "its declared size", archive)
        return _Bounded(stream, where, info.file_size, "its declared size", archive, info.CRC)
    except BaseException:
        archive.close()
        raise


def _zip_lzma(stream, where, declared):
    """An lzma zip member's raw stream as a bounded ``LZMAFile``: the member starts with a
    version (2 bytes), the size of the LZMA1 properties (2 bytes) and the properties
    (lc/lp/pb in one byte, then the dictionary size)."""
    head = stream.read(4)
    size = int.from_bytes(head[2:4], "little") if len(head) == 4 else 0
    props = stream.read(size)
    if size < 5 or len(props) != size or props[0] >= 9 * 5 * 5:
        raise ValueError(f"{where}: a corrupted lzma header")
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    # a dictionary larger than the member's declared size would never be used: capping it
    # keeps a crafted header from allocating gigabytes
    dict_size = min(int.from_bytes(props[1:5], "little"), max(declared, 4096))
    lzma_filter = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}
    return lzma.LZMAFile(stream, format=lzma.FORMAT_RAW, filters=[lzma_filter])


class _Bounded(io.RawIOBase):
    """A decompressing stream that raises ``ValueError`` once it yields more than ``limit``
    bytes (``why``: what the limit is), and, given the expected ``crc``, checks it at the
    end; closes ``closing`` (an archive) with it."""

    def __init__(self, fh, where, limit, why, closing=None, crc=None):
        self._fh, self._where, self._limit, self._why, self._crc = fh, where, limit, why, crc
        self._closing, self._count, self._seen_crc = closing, 0, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._fh.read(min(len(buffer), self._limit + 1 - self._count))
        self._count += len(data)
        if self._count > self._limit:
            raise ValueError(f"{self._where} inflates to more than {self._limit:,} bytes "
                             f"({self._why})")
        if self._crc is not None:
            self._seen_crc = zlib.crc32(data, self._seen_crc)
            if not data and self._seen_crc != self._crc:
                raise ValueError(f"{self._where}: bad CRC-32 (corrupted)")
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        if not self.closed:
            self._fh.close()
            if self._closing is not None:
                self._closing.close()
        super().close()


def _zip_member(path, member):
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, NotImplementedError) as exc:  # (e.g. 'zip file version 8.4')
        raise ValueError(f"{path}: not a valid zip archive ({exc})") from exc
    if member is not None:
        if member not in names:
            raise ValueError(f"{path}: no member {shown(member)}; it holds [{_listed(names)}]")
        return member
    if len(names) == 1:
        return names[0]
    known = [n for n in names if os.path.basename(n) in RATING_FILES]
    if len(known) == 1:
        return known[0]
    raise ValueError(Message("{0}: holds {1} files ([{2}]); say which with {3}", path, len(names),
                             _listed(names), Setting("member")))


def _listed(names, limit=10):
    """Names from a file (a header's, an archive's) for a message: each quoted and cut,
    at most ``limit`` of them."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(shown(n, limit=60) for n in names[:limit]) + more


def _scan(open_stream, count):
    """The sum of ``count(chunk, previous)`` over a stream's megabyte chunks (uint8 arrays;
    ``previous``: the byte before the chunk, a newline at the start)."""
    buffer = bytearray(1 << 20)
    view = np.frombuffer(buffer, dtype=np.uint8)
    total, previous = 0, ord("\n")
    with open_stream() as fh:
        while True:
            n = fh.readinto(buffer)
            if not n:
                return total
            total += count(view[:n], previous)
            previous = int(view[n - 1])


def _before(chunk, previous):
    """Each byte's predecessor in the stream."""
    out = np.empty_like(chunk)
    out[0], out[1:] = previous, chunk[:-1]
    return out


def _count_byte(open_stream, byte):
    """How often ``byte`` occurs in a stream."""
    return _scan(open_stream, lambda chunk, _: int(np.count_nonzero(chunk == byte)))


def _line_ends_after_content(chunk, previous):
    ends = (chunk == ord("\n")) | (chunk == ord("\r"))
    before = _before(chunk, previous)
    return int(np.count_nonzero(ends & (before != ord("\n")) & (before != ord("\r"))))


def _count_filled_lines(open_stream):
    """At least as many as the stream's lines that are not empty: line ends (LF, CR) that
    follow another byte, plus one. Blank lines cost no rows (a few KB of compressed blank
    lines would otherwise ask for gigabytes of row capacity)."""
    return 1 + _scan(open_stream, _line_ends_after_content)


def _padded_numbers(chunk, previous):
    """Bytes that may start an integer whose text is not its plain decimal: a sign, or a
    '0' that begins a number and is followed by a digit ('007')."""
    digit = (chunk >= ord("0")) & (chunk <= ord("9"))
    before = _before(chunk, previous)
    starts = (chunk == ord("0")) & ~((before >= ord("0")) & (before <= ord("9"))) \
        & (before != ord("."))
    starts[:-1] &= digit[1:]  # (a '0' ending the chunk counts: its next byte is unseen)
    signs = (chunk == ord("+")) | (chunk == ord("-"))  # ('+7' is 7, '-0' is 0)
    return int(np.count_nonzero(starts | signs))


def _parse_fast(open_stream, columns, sep, header):
    """A plain file through the compiled parser, as a frame; None when it needs the general path.

    The parser takes only plain lines (integers, a decimal rating, the
    separator between them); on anything else it stops and the general
    reader, which explains problems line by line, takes over.
    """
    import pandas as pd

    capacity = _count_filled_lines(open_stream)  # (room for every line: one chunk)
    chunks = list(_fast_chunks(open_stream, len(columns), sep, header, capacity, _FAST_BLOCK))
    if any(chunk is None for chunk in chunks):
        return None
    arrays = dict(zip(COLUMNS, chunks[0] if chunks else [np.empty(0, t) for t in _FAST_TYPES]))
    return pd.DataFrame({c: arrays[c] for c in columns}, copy=False)


#: the types of the compiled parser's columns (user, item, rating, timestamp)
_FAST_TYPES = (np.int64, np.int64, np.float32, np.int64)


def _fast_chunks(open_stream, n_fields, sep, header, capacity, block_size):
    """The plain lines of a stream through the compiled parser: (users, items, ratings,
    timestamps) arrays of at most ``capacity`` ratings each, reading ``block_size`` bytes
    at a time; a None in their place when a line is not plain (then the general reader,
    which explains problems line by line, must read the file) and nothing after it."""
    def empty():
        return [np.empty(capacity if n < 3 or n_fields == 4 else 0, t)
                for n, t in enumerate(_FAST_TYPES)]

    arrays, row, rest, skip_header = empty(), 0, b"", header
    with open_stream() as fh:
        while True:
            block = fh.read(block_size)
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1 if block else len(data)  # whole lines only, but at EOF
            rest = data[cut:]
            if len(rest) > _FAST_LINE:
                yield None
                return
            start = 0
            if skip_header and cut:  # the header is the file's first line
                end = data.find(b"\n")
                if end < 0 or b"\r" in data[:max(end - 1, 0)]:
                    yield None  # it ends in a lone CR: the general reader splits such lines
                    return
                start, skip_header = end + 1, False
            while cut > start:
                row, _, failed, offset = parse_block(memoryview(data)[start:cut], sep.encode(),
                                                     n_fields, *arrays, row)
                if failed and row < capacity:
                    yield None
                    return
                start += offset
                if row == capacity and cut > start:  # full: hand it over, parse on
                    yield _trimmed(arrays, row)
                    arrays, row = empty(), 0
            if not block:
                break
    if row:
        yield _trimmed(arrays, row)


def _trimmed(arrays, row):
    """The first ``row`` values of each parsed column (the columns themselves when full)."""
    return tuple(a if len(a) == row or not len(a) else a[:row] for a in arrays)


# --- sniffing the layout ----------------------------------------------------------------------

# Lines, blanks and numbers as pandas' C parser sees them (not as Python's str methods do,
# which also break lines at \x0b, \x1c, \x85 ... and strip them as whitespace).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SPACE = " \t"
_WHITESPACE_SEP = re.compile(r"[ \t]+")


def _lines(text):
    return _LINE_BREAK.split(text)


def _is_blank(line):
    return not line.strip(_SPACE + "\r\n")


def _split(line, sep):
    if sep == "whitespace":
        return _WHITESPACE_SEP.split(line.strip(_SPACE))
    return line.split(sep)


def _plain(text):
    """ASCII, no underscore digit separators and no whitespace but spaces and tabs around
    it: what pandas reads as a number (Python's int() and float() accept more, such as the
    fullwidth digit '５')."""
    return text.isascii() and "_" not in text and text.strip(_SPACE) == text.strip()


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return _plain(text)


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return _plain(text)


def _rating_problem(value):
    """Why the text ``value`` is not a rating (a finite float32 number that does not
    silently become 0), or None."""
    if not _is_number(value):
        return f"rating {shown(value)} is not a finite number"
    number = float(value)
    with np.errstate(over="ignore", under="ignore"):
        single = np.float32(number)
    if not np.isfinite(single):
        return (f"rating {shown(value)} is not a finite number" + (
            f" in float32, the ratings' type (beyond {_F32.max:.8g})" if np.isfinite(number)
            else ""))
    mantissa = value.strip(_SPACE).lower().partition("e")[0]
    if single == 0 and re.search("[1-9]", mantissa):
        return (f"rating {shown(value)} is too small for float32, the ratings' type: non-zero "
                f"but below {float(_F32.smallest_subnormal):.3g}, it would read as 0")
    return None


def _looks_like_header(fields):
    """A first line is a header only if it is clearly one: no field is a number and, with a
    rating column (three fields or more), that is enough (a data line's rating is a number);
    two fields (a pairs file, string ids) must both be known column names."""
    if len(fields) < 2 or not all(f and not _is_number(f) for f in fields):
        return False
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    return len(fields) >= 3 or all(f.strip('"').lower() in known for f in fields)


def _sniff(open_stream, name, sep, header, encoding="utf-8"):
    """Separator, the header's line number (0: none; blank lines may come first), header
    names, first data line's fields and the header's colons."""
    head, whole = _head(open_stream)
    _check_unicode_mark(name, head, encoding)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    numbered = [(n, ln) for n, ln in enumerate(_lines(text), start=1) if not _is_blank(ln)]
    lines = [ln for _, ln in numbered]
    complete = whole or _LINE_BREAK.search(text.lstrip(_SPACE + "\r\n")) is not None
    if lines and (len(lines[0]) > MAX_LINE or not complete):
        raise ValueError(f"{name}, line {numbered[0][0]}: a line of over {MAX_LINE:,} "
                         f"characters (is this a rating file?): {shown(lines[0])}")
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    if not lines:
        raise ValueError(f"{name}: empty file, no ratings")
    first = lines[0]
    if sep is None:
        if "::" in first:
            sep = "::"
        elif "\t" in first:
            sep = "\t"
        elif "," in first:
            sep = ","
        elif ";" in first:
            sep = ";"
        else:
            sep = "whitespace"
    elif sep not in SEPARATORS:
        raise ValueError(f"sep must be one of {sorted(SEPARATORS)}, got {shown(sep)}")
    else:
        sep = SEPARATORS[sep]
    fields = [f.strip(_SPACE) for f in _split(first, sep)]
    if header is None:
        header = _looks_like_header(fields)
    data_lines = lines[1:] if header else lines
    if not data_lines:
        raise ValueError(f"{name}: no ratings (only a header line)")
    names = [f.strip('"').lower() for f in fields] if header else None
    header_colons = lines[0].count(":") if header else 0
    return (sep, numbered[0][0] if header else 0, names,
            [f.strip(_SPACE) for f in _split(data_lines[0], sep)], header_colons)


def _head(open_stream):
    """(the stream's first bytes, whether that is all of it): ``_SNIFF_BYTES``, or more
    until the first line with content ends (about ``MAX_LINE`` characters' worth at most)."""
    with open_stream() as fh:
        head = _read_upto(fh, _SNIFF_BYTES)
        while len(head) <= 4 * MAX_LINE:
            content = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
            if b"\n" in content or b"\r" in content:
                break
            more = _read_upto(fh, len(head))
            if not more:
                break
            head += more
        return head, not _read_upto(fh, 1)


def _read_upto(fh, size):
    """``size`` bytes of ``fh``, fewer only at its end (a raw stream may return less)."""
    parts, got = [], 0
    while got < size:
        part = fh.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


#: byte-order marks of the encodings a UTF-8 reader would misread (longest first)
_MARKS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
          (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _check_unicode_mark(name, head, encoding):
    """A file that starts with a UTF-16 or UTF-32 byte-order mark, read as another encoding,
    is a ``ValueError`` that says which encoding to pass."""
    for mark, family in _MARKS:
        if head.startswith(mark):
            if not encoding.startswith(family):
                raise ValueError(f"{name}: the file starts with a {family.upper()} byte-order "
                                 f"mark but is read as {encoding}; pass encoding={family!r}")
            return


def _checked_columns(columns, min_fields):
    """``columns=`` as a list of canonical names (the file's columns in order), checked."""
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",")]
    try:
        columns = list(columns)
    except TypeError:
        raise ValueError(f"columns must be a list of column names, got {shown(columns)}") from None
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"columns: unknown name(s) {_listed(unknown)}; "
                         f"each must be one of {', '.join(COLUMNS)}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns names a column twice: [{_listed(columns)}]")
    required = ("user", "item", "rating")[:min_fields]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(f"columns must include {', '.join(required)}; "
                         f"{', '.join(missing)} missing from [{_listed(columns)}]")
    return columns


def _field_names(name, header_names, n_fields, columns, usecols, min_fields):
    """The canonical name of each of the file's fields, None for a field not read.

    ``usecols`` (header names or 0-based positions) picks the fields to read; without it
    a header whose user, item (and, for ratings, rating) columns are all known names
    reads those and skips the fields it does not know (``tag``, ``comment``...)."""
    if header_names and len(header_names) != n_fields:
        raise ValueError(f"{name}: the header names {len(header_names)} column(s) "
                         f"({_listed(header_names)}) but the first data line has {n_fields} "
                         "field(s)")
    if usecols is None and header_names and columns is None:
        canonical = {alias: col for col, aliases in ALIASES.items() for alias in aliases}
        needed = ("user", "item", "rating")[:min_fields]
        if n_fields > 4 or (any(h not in canonical for h in header_names)
                            and all(any(canonical.get(h) == c for h in header_names)
                                    for c in needed)):
            usecols = [h for h in header_names if h in canonical]
            _warn_of_misspellings(name, header_names)
    if usecols is None:
        return _column_order(name, header_names, n_fields, columns)
    if isinstance(usecols, str):
        usecols = [c.strip() for c in usecols.split(",")]
    keep = []
    for c in usecols:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < n_fields:
            keep.append(int(c))
        elif header_names and str(c).lower() in header_names:
            keep.append(header_names.index(str(c).lower()))
        else:
            raise ValueError(f"{name}: usecols: no column {shown(c)} (the file has {n_fields} "
                             "field(s)" + (f", named [{_listed(header_names)}])" if header_names
                                           else ")"))
    if len(set(keep)) != len(keep) or not 2 <= len(keep) <= 4:
        raise ValueError(f"{name}: usecols must pick 2 to 4 distinct columns, got "
                         f"{shown(usecols)}")
    names = _column_order(name, [header_names[k] for k in keep] if header_names else None,
                          len(keep), columns)
    fields = [None] * n_fields
    for k, c in zip(sorted(keep), [names[keep.index(k)] for k in sorted(keep)]):
        fields[k] = c
    return fields


def _close_alias(header_name):
    """The known column name ``header_name`` looks like a misspelling of, or None."""
    import difflib

    known = [alias for aliases in ALIASES.values() for alias in aliases]
    close = difflib.get_close_matches(header_name, known, n=1, cutoff=0.75)
    return close[0] if close else None


def _warn_of_misspellings(name, header_names):
    """Warn for each header name that is skipped as unknown but looks like a misspelt name
    of a column the header lacks (``timestmap``: the timestamps would silently be lost)."""
    canonical = {alias: col for col, aliases in ALIASES.items() for alias in aliases}
    present = {canonical[h] for h in header_names if h in canonical}
    for header_name in header_names:
        close = None if header_name in canonical else _close_alias(header_name)
        if close is not None and canonical[close] not in present:
            warn(Message("{0}: the header's column {1} is not a name this reader knows, so it "
                         "is skipped; did you mean {2}? (name the file's columns with {3})",
                         name, shown(header_name), repr(close), Setting("columns")), UserWarning)


def _column_order(name, header_names, n_fields, columns):
    """Canonical names of the file's columns: ``columns`` if given, else the header's names
    (every one must be known), else user, item, rating[, timestamp] by position."""
    if columns is not None:
        if len(columns) != n_fields:
            raise ValueError(f"{name}: columns names {len(columns)} column(s) "
                             f"({_listed(columns)}) but the first data line has {n_fields} "
                             "field(s)")
        return columns
    if not header_names:
        return list(COLUMNS[:n_fields])
    canonical = {alias: col for col, aliases in ALIASES.items() for alias in aliases}
    unknown = [h for h in header_names if h not in canonical]
    if unknown:
        known = "; ".join(f"{c}: {', '.join(a)}" for c, a in ALIASES.items())
        raise ValueError(Message(
            "{0}: the header names column(s) this reader does not know: {1} (it knows {2}); "
            "name the file's columns in order with {3}, e.g. {4}, and pick the ones to read "
            "with {5} when there are more", name,
            ", ".join(shown(h, limit=60) + (f" (did you mean {_close_alias(h)!r}?)"
                                            if _close_alias(h) else "") for h in unknown[:10]),
            known, Setting("columns"),
            Setting("columns", list(COLUMNS[:min(len(header_names), 4)])), Setting("usecols")))
    mapped = [canonical[h] for h in header_names]
    twice = sorted({c for c in mapped if mapped.count(c) > 1})
    if twice:
        raise ValueError(Message("{0}: the header {1} names the {2} column more than once; "
                                 "name the file's columns with {3}", name, f"[{_listed(header_names)}]",
                                 ", ".join(twice), Setting("columns")))
    if len(mapped) != n_fields:
        raise ValueError(f"{name}: the header names {len(mapped)} column(s) "
                         f"({_listed(header_names)}) but the first data line has {n_fields} "
                         "field(s)")
    missing = [c for c in ("user", "item") if c not in mapped]
    if missing:
        raise ValueError(Message("{0}: no {1} column among the header's names {2}; name the "
                                 "file's columns with {3}", name, " or ".join(missing),
                                 f"[{_listed(header_names)}]", Setting("columns")))
    return mapped


# --- parsing -------------------------------------------------------------------------

def read_ratings(path: PathLike, *, sep: str | None = None, header: bool | None = None,
                 columns: Sequence[str] | None = None, ids: Literal["auto", "int", "str"] = "auto",
                 on_bad_lines: Literal["error", "skip"] = "error", member: str | None = None,
                 usecols: Sequence[int | str] | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a rating file into a DataFrame with columns user, item, rating (and timestamp).

    Parameters
    ----------
    path : str, path-like or binary file object
        A text file (``ratings.dat``, ``u.data``, ``ratings.csv``...), optionally
        ``.gz``/``.bz2``/``.xz``/``.zip`` compressed, or a ``.parquet`` file
        (needs pyarrow or fastparquet). A pipe (``/dev/stdin``, ``<(zcat ...)``)
        or a binary stream (``sys.stdin.buffer``) is read once, into a temporary
        file (its name, if any, tells the compression).
    sep : None or one of "::", "\\t", ",", ";", "whitespace"
        The field separator; None detects it from the first line.
    header : None or bool
        Whether the first line names the columns; None detects it: the first
        line is a header only if none of its fields is a number (so a bad first
        data line such as ``1,10,five`` is an error like any other line, never
        dropped as a header). Header names put the columns in order; every name
        must be known (``user``, ``userId``, ``movieId``, ``rating``,
        ``timestamp``... see ``ALIASES``), else a ``ValueError`` names the
        unknown ones; but when the user, item and rating columns are all known,
        columns with other names (``userId,movieId,rating,timestamp,tag``) are
        skipped. Without a header the columns are user, item, rating[, timestamp].
    columns : None, list of str, or a comma-separated str
        The file's columns in order, each one of "user", "item", "rating",
        "timestamp" (e.g. ``["rating", "user", "item"]``); overrides the header's
        names (a header line is still skipped) and the positional default.
    ids : {"auto", "int", "str"}
        Integer ids (int32, or int64 when needed) or string ids (category, each
        id exactly its text: "007", "7" and "7.0" are three ids, "1e3" stays
        "1e3"). "auto" decides from the first data line, and reads string ids
        when any integer id is written other than as its plain decimal ("007",
        "+7", "-0"): as integers those would silently merge with "7" and "0",
        and output would not give back the ids read. An id has at most
        4,096 characters (``mfcore.ids.MAX_ID_LENGTH``): a longer one is a bad
        line.
    on_bad_lines : {"error", "skip"}
        Raise ``ValueError`` naming the file and line of the first bad line, or
        drop bad lines with a ``UserWarning`` that counts them.
    member : str, optional
        Which file of a ``.zip`` archive to read (default: its only file, or
        its one ``ratings.*``/``u.data``).
    usecols : None, list of header names or 0-based positions, or a comma-separated str
        The fields to read, the others skipped (as pandas' ``usecols``); ``columns=``
        then names the fields read, in order.
    encoding : str, default "utf-8"
        The text's encoding (e.g. "latin-1" for string ids written by older tools).

    Examples
    --------
    >>> import os, tempfile
    >>> import mfcore
    >>> path = os.path.join(tempfile.mkdtemp(), "u.data")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("1\t10\t4\t881250949\\n2\t10\t3\t891717742\\n")
    >>> mfcore.read_ratings(path)
       user  item  rating  timestamp
    0     1    10     4.0  881250949
    1     2    10     3.0  891717742
    """
    return _read(path, sep, header, columns, ids, on_bad_lines, member, min_fields=3,
                 usecols=usecols, encoding=encoding)


def read_pairs(path: PathLike, *, sep: str | None = None, header: bool | None = None,
               columns: Sequence[str] | None = None, ids: Literal["auto", "int", "str"] = "auto",
               on_bad_lines: Literal["error", "skip"] = "error", member: str | None = None,
               usecols: Sequence[int | str] | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Like ``read_ratings`` but the rating column is optional: user, item[, rating[, timestamp]].

    Examples
    --------
    >>> import os, tempfile
    >>> from mfcore.io import read_pairs
    >>> path = os.path.join(tempfile.mkdtemp(), "pairs.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("user,item\\n1,10\\n2,20\\n")
    >>> read_pairs(path)
       user  item
    0     1    10
    1     2    20
    """
    return _read(path, sep, header, columns, ids, on_bad_lines, member, min_fields=2,
                 usecols=usecols, encoding=encoding)


def _read(path, sep, header, columns, ids, on_bad_lines, member, min_fields, usecols=None,
          encoding="utf-8"):
    text_options = _text_options(sep, header, columns, ids, on_bad_lines, min_fields, usecols,
                                 encoding)
    if hasattr(path, "read"):  # a binary stream (sys.stdin.buffer): read once
        return _read_once(path, str(getattr(path, "name", "<stream>")), member, text_options)
    path = _existing(path)
    if not os.path.isfile(path):  # a pipe, /dev/stdin, <(...): the readers open a file often
        with open(path, "rb") as fh:
            return _read_once(fh, path, member, text_options)
    return _read_file(path, path, member, text_options)


def _existing(path):
    """``path`` as a str, once it names something that is not a folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"ratings file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a ratings file")
    return path


def _text_options(sep, header, columns, ids, on_bad_lines, min_fields, usecols, encoding):
    """The reading options checked, as ``_read_text`` takes them (from ``sep`` on)."""
    if columns is not None:
        columns = _checked_columns(columns, min_fields)
    if header not in (None, True, False):
        raise ValueError(f"header must be None, True or False, got {header!r}")
    if ids not in ("auto", "int", "str"):
        raise ValueError(f"ids must be 'auto', 'int' or 'str', got {ids!r}")
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    try:
        encoding = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(f"encoding: unknown text encoding {shown(encoding)}") from None
    return (sep, header, columns, ids, on_bad_lines, min_fields, usecols, encoding)


class RatingChunks:
    """A rating file read a chunk of ratings at a time, anew each time it is iterated.

    Iterating yields ``(users, items, ratings)`` numpy arrays of at most ``chunk_size``
    ratings each, in file order: the rows ``read_ratings(path, **options)`` returns (the
    same options, the same errors for bad lines). ``SGD.fit`` and ``ALS.fit`` take it in
    place of the ratings and lay the ratings out for training straight from the file,
    without holding them as arrays (``mfcore.data.prepare_chunks``; the user guide's
    "Data larger than memory"), as LIBMF reads its file.

    A plain text file (integer ids, a decimal rating, an integer timestamp, separated by
    ``::``, tab, comma or semicolon), compressed or not, goes through the compiled parser a
    block at a time: memory for one chunk, not for the file. Any other file (string ids,
    Parquet, a line the compiled parser does not take) is read whole by ``read_ratings``
    and handed out in chunks: the same rows, without that bound. A pipe or an open stream
    is refused: a fit reads the file several times.

    Examples
    --------
    >>> import os, tempfile, mfcore
    >>> path = os.path.join(tempfile.mkdtemp(), "u.data")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("1\t10\t4\\n2\t10\t3\\n2\t20\t5\\n")
    >>> chunks = mfcore.RatingChunks(path, chunk_size=2)
    >>> [ratings.tolist() for users, items, ratings in chunks]
    [[4.0, 3.0], [5.0]]
    """

    streams_ratings = True  # (what ``mfcore.data.is_chunked`` looks for)

    def __init__(self, path: PathLike, chunk_size: int = 1 << 16, **options):
        if hasattr(path, "read"):
            raise TypeError("RatingChunks reads its file once per pass of a fit: give the "
                            "file's path, not an open stream")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        unknown = set(options) - set(_READ_OPTIONS)
        if unknown:
            raise TypeError(f"RatingChunks: unknown option(s) {sorted(unknown)}; it takes "
                            f"read_ratings' options: {', '.join(_READ_OPTIONS)}")
        self.path, self.chunk_size = os.fspath(path), chunk_size
        self.options = {**_READ_OPTIONS, **options}
        self._plan = None  # how the compiled parser reads it (False: it does not)

    def __repr__(self):
        return f"RatingChunks({self.path!r}, chunk_size={self.chunk_size})"

    def __iter__(self):
        plan, done = self._planned(), 0
        if plan:
            with _reading(self.path):
                for chunk in _fast_chunks(plan["open"], len(plan["columns"]), plan["sep"],
                                          plan["header"] == 1, self.chunk_size, _STREAM_BLOCK):
                    if chunk is None:  # a line it does not take: the general reader from here
                        break
                    done += len(chunk[0])
                    yield chunk[:3]
                else:
                    if done:
                        return
            self._plan = False
        yield from self._general(done)

    def _planned(self):
        """The compiled parser's plan for this file (``_plan_text``, with ``open``), or False."""
        if self._plan is None:
            o = self.options
            sep, header, columns, ids, _, _, usecols, encoding = _text_options(
                o["sep"], o["header"], o["columns"], o["ids"], o["on_bad_lines"], 3,
                o["usecols"], o["encoding"])
            path = _existing(self.path)
            if not os.path.isfile(path):
                raise ValueError(f"{path} is not a regular file (a pipe?): a fit reads its "
                                 "ratings file several times; save it to a file first")
            self._plan = False
            if not path.lower().endswith((".parquet", ".pq")):
                name = f"{path}!{o['member']}" if o["member"] else path
                opener = _opener(path, o["member"])
                with _reading(name):
                    plan = _plan_text(path, name, opener, sep, header, columns, ids, 3,
                                      usecols, encoding)
                if plan["fast"]:
                    self._plan = dict(plan, open=opener)
        return self._plan

    def _general(self, done):
        """The file's chunks from rating ``done`` on, from ``read_ratings``."""
        frame = read_ratings(self.path, **self.options)
        users, items = (_id_values(frame[c]) for c in ("user", "item"))
        ratings = frame["rating"].to_numpy()
        del frame
        for start in range(done, len(ratings), self.chunk_size):
            part = slice(start, start + self.chunk_size)
            yield tuple(ids(part) if callable(ids) else ids[part]
                        for ids in (users, items)) + (ratings[part],)


#: ``read_ratings``' options and their defaults (``RatingChunks`` takes them too)
_READ_OPTIONS = {"sep": None, "header": None, "columns": None, "ids": "auto",
                 "on_bad_lines": "error", "member": None, "usecols": None, "encoding": "utf-8"}
#: bytes ``RatingChunks`` reads at a time
_STREAM_BLOCK = 1 << 20


def _id_values(column):
    """A column of ids as a numpy array, or for string ids (a category) a function giving
    the ids of a slice of rows (object arrays a chunk at a time, not the file's)."""
    if column.dtype.name != "category":
        return column.to_numpy()
    names = np.asarray(column.cat.categories, dtype=object)
    codes = column.cat.codes.to_numpy()
    return lambda part: names[codes[part]]


def _read_file(path, name, member, text_options):
    """Read the regular file at ``path`` (``name``: the source, for messages)."""
    if path.lower().endswith((".parquet", ".pq")):
        return _read_parquet(path, text_options[5], text_options[2])
    name = f"{name}!{member}" if member else name
    with _reading(name):
        return _read_text(path, name, _opener(path, member), *text_options)


@contextlib.contextmanager
def _reading(name):
    """Errors of a truncated or corrupted compressed file (zipfile: a version or method it
    lacks), or an unreadable one, as a ``ValueError`` naming the file."""
    try:
        yield
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, lzma.LZMAError,
            zlib.error) as exc:
        raise ValueError(f"{name}: cannot read the file ({type(exc).__name__}: {exc})") from exc


#: how a compressed stream without a telling name starts
_MAGIC = ((b"\x1f\x8b", ".gz"), (b"BZh", ".bz2"), (b"\xfd7zXZ\x00", ".xz"),
          (b"PK\x03\x04", ".zip"), (b"PAR1", ".parquet"))


def _read_once(stream, name, member, text_options):
    """Read a stream that can be read only once (a pipe, stdin) from a temporary copy; its
    name's suffix, else its first bytes, tell a compressed one.

    An uncompressed stream holding a NUL byte is refused as it is copied: no text rating
    file has one, and ``/dev/zero`` would never end."""
    import tempfile

    first = _read_upto(stream, 1 << 20)
    suffix = next((s for s in COMPRESSED + (".parquet", ".pq") if name.lower().endswith(s)),
                  next((s for magic, s in _MAGIC if first.startswith(magic)), ""))
    text = not suffix and not text_options[7].startswith(("utf-16", "utf-32"))
    with tempfile.TemporaryDirectory(prefix="mfcore-") as folder:
        copy = os.path.join(folder, "ratings" + suffix)
        with open(copy, "wb") as out:
            chunk, offset = first, 0
            while chunk:
                if text and b"\x00" in chunk:
                    raise ValueError(f"{name}: a NUL byte at byte {offset + chunk.index(0):,} "
                                     "(is this a text file?)")
                out.write(chunk)
                offset += len(chunk)
                chunk = stream.read(1 << 20)
        return _read_file(copy, name, member, text_options)


def _plan_text(path, name, open_stream, sep, header, columns, ids, min_fields, usecols,
               encoding):
    """How to read a text file: a dict of its separator, header line, the columns read
    (``columns``), the id kind (``ids``, decided here when "auto": ``auto``), the layouts
    that read it as text and with ``ids`` (``as_text``, ``layout``) and whether the
    compiled parser may try it (``fast``)."""
    sep, header, header_names, fields, header_colons = _sniff(open_stream, name, sep, header,
                                                              encoding)
    n_fields = len(fields)
    if n_fields < min_fields or (n_fields > 4 and usecols is None and not header_names):
        need = "user, item, rating[, timestamp]" if min_fields == 3 else "user, item[, rating[, timestamp]]"
        raise ValueError(f"{name}: the first line has {n_fields} field(s); expected {need} "
                         "(pick the fields to read with usecols=)")
    field_names = _field_names(name, header_names, n_fields, columns, usecols, min_fields)
    columns = [c for c in field_names if c]
    if min_fields == 3 and "rating" not in columns:
        raise ValueError(f"{name}: no rating column among [{_listed(header_names)}]")
    plain = not path.lower().endswith(COMPRESSED)
    as_text = _Layout(name, path if plain else None, open_stream, sep, header, field_names, "str",
                      header_colons, encoding)
    auto = ids == "auto"
    if auto:
        ids = "int" if all(_is_int(fields[field_names.index(c)]) for c in ("user", "item")) else "str"
        if ids == "int" and _scan(open_stream, _padded_numbers):
            ids = "str" if any(_id_forms(as_text)) else "int"
    layout = _Layout(name, path if plain else None, open_stream, sep, header, field_names, ids,
                     header_colons, encoding)
    fast = (sep in ("::", "\t", ",", ";") and ids == "int" and len(field_names) >= 3
            and field_names == list(COLUMNS[:len(field_names)]) and header in (0, 1)
            and encoding in ("utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"))
    return {"sep": sep, "header": header, "columns": columns, "ids": ids, "auto": auto,
            "as_text": as_text, "layout": layout, "fast": fast}


def _read_text(path, name, open_stream, sep, header, columns, ids, on_bad_lines, min_fields,
               usecols, encoding):
    plan = _plan_text(path, name, open_stream, sep, header, columns, ids, min_fields, usecols,
                      encoding)
    ids, auto, as_text, layout = plan["ids"], plan["auto"], plan["as_text"], plan["layout"]
    frame = None
    if plan["fast"]:
        frame = _parse_fast(open_stream, plan["columns"], plan["sep"], plan["header"] == 1)
    if frame is not None and len(frame):
        return _finish(frame)
    if ids == "int":  # pandas reads '1.0' and '1e3' as the integers 1 and 1000, silently
        padded, fractional = _id_forms(as_text)
        if auto and (padded or fractional):
            layout = as_text
        elif fractional:
            layout.fractional_ids = True   # (an error naming the line, below)
    frame, bad = layout.parse()
    if bad is not None:
        bad_lines = layout.diagnose(first_only=on_bad_lines == "error")
        if not bad_lines:
            raise ValueError(f"{name}: could not parse the file: {shown(str(bad), quote=False)}")
        if on_bad_lines == "error":
            line, problem = bad_lines[0]
            raise ValueError(Message("{0}, line {1}: {2}", name, line, problem))
        frame, still_bad = layout.parse(skip=[line for line, _ in bad_lines])
        if still_bad is not None:
            raise ValueError(f"{name}: could not parse the file: "
                             f"{shown(str(still_bad), quote=False)}")
        if not len(frame):
            raise ValueError(Message("{0}: no ratings: all {1} line(s) are bad, the first at "
                                     "line {2}: {3}", name, len(bad_lines), *bad_lines[0]))
        warn(Message("{0}: skipped {1} bad line(s), the first at line {2}: {3}", name,
                     len(bad_lines), *bad_lines[0]), BadLinesWarning)
    if not len(frame):  # (the sniffer saw a data line: never return nothing silently)
        raise ValueError(f"{name}: no ratings could be read")
    _warn_of_padded_ids(name, frame)
    return _finish(frame)


def _warn_of_padded_ids(name, frame):
    """Warn when string ids begin or end with a space or tab: they are kept as written
    (' i1' and 'i1' are two ids), which padding after a separator ('u1, i1, 5') makes
    silently wrong."""
    for column in ("user", "item"):
        if column in frame and frame[column].dtype.name == "category":  # (string ids)
            ids = frame[column].cat.categories.astype(str)
            padded = ids[np.asarray(ids.str.strip(_SPACE) != ids)]
            if len(padded):
                warn(Message("{0}: {1} {2} id(s) begin or end with a space (e.g. {3}): string "
                             "ids are kept as written, so {3} and {4} are two ids; remove the "
                             "spaces if they only pad the separators", name, len(padded),
                             column, shown(padded[0]), shown(padded[0].strip(_SPACE))),
                     UserWarning)


class _Layout:
    """How to parse one file: a fast pandas pass, and a slow line-by-line diagnosis on failure."""

    def __init__(self, name, path, open_stream, sep, header, fields, ids, header_colons=0,
                 encoding="utf-8"):
        # header: the header's line number (0: none); fields: each field's canonical name,
        # None for one not read
        self.name, self.open_stream, self.sep, self.header = name, open_stream, sep, header
        self.path = path  # set for an uncompressed file
        self.fields, self.columns = fields, [c for c in fields if c]
        self.ids, self.header_colons, self.encoding = ids, header_colons, encoding
        self.fractional_ids = False   # set when an id is '1.0' or '1e3' (see _id_forms)
        self.rating_as_text = False   # set to read the ratings' text (see _underflow)

    def _dtypes(self):
        # string ids as text, exactly: asked for "category", pandas infers numeric categories
        # ("007" and "7" both 7, "1e3" 1000.0); _finish makes them categories
        kinds = {"user": str if self.ids == "str" else np.int64,
                 "item": str if self.ids == "str" else np.int64,
                 "rating": str if self.rating_as_text else np.float64,  # (see _as_float32)
                 "timestamp": np.int64}
        return {c: kinds[c] for c in self.columns}

    def parse(self, skip=()):
        """(frame, None) on success, (None, reason) when some line is bad."""
        import pandas as pd

        # a plain file goes to pandas by name: its C reader is faster than a Python stream
        stream = self.path if self.path else self.open_stream()
        fields = [c or f"_skip{n}" for n, c in enumerate(self.fields)]
        names, usecols = fields, (self.columns if len(self.columns) < len(fields) else None)
        if self.sep == "::":  # 'a::b' split at ':' is a, '', b: parse only the real fields
            sep, usecols = ":", self.columns
            names = [f"_{n}" if n % 2 else fields[n // 2] for n in range(2 * len(fields) - 1)]
        else:
            sep = r"\s+" if self.sep == "whitespace" else self.sep
        skiprows = sorted(set(skip) | ({self.header} if self.header else set()))
        try:  # (a short line's missing id is NaN cast to int: numpy's warning is noise here)
            with contextlib.nullcontext(stream) if self.path else stream, np.errstate(all="ignore"):
                frame = pd.read_csv(
                    stream, sep=sep, header=None, names=names, usecols=usecols, dtype=self._dtypes(),
                    engine="c", skiprows=[s - 1 for s in skiprows] or None,
                    skip_blank_lines=True, na_filter=False,
                    encoding=self.encoding, on_bad_lines="error")
        except (ValueError, OverflowError, TypeError, UnicodeDecodeError,
                pd.errors.ParserError) as exc:
            return None, exc
        if self.rating_as_text:
            return frame, None
        too_long = self._long_ids(frame)
        if too_long:
            return None, too_long
        if self.fractional_ids and not skip:
            return None, "an integer id written with a fraction or an exponent"
        if "rating" in frame:
            ratings = frame["rating"].to_numpy()
            single, bad = _as_float32(ratings)
            if bad is None and not ratings.all():
                bad = self._underflow(ratings == 0, skip)
            if bad:
                return None, bad
            frame["rating"] = single
        if self.ids == "str" and not skip and _count_byte(self.open_stream, 0):  # (numbers fail)
            return None, "a NUL byte"
        if self.sep == "::" and not skip:
            expected = 2 * (len(self.fields) - 1) * len(frame) + self.header_colons
            colons = _count_byte(self.open_stream, ord(":"))
            if colons != expected:
                return None, f"{colons} colons where {expected} were expected"
        return frame, None

    def _long_ids(self, frame):
        """Make string id columns categories; the problem when an id is longer than
        ``MAX_ID_LENGTH`` (its line is found by ``diagnose``), else None."""
        for column in ("user", "item"):
            if self.ids == "str" and column in frame:
                frame[column] = frame[column].astype("category")
                categories = frame[column].cat.categories
                if len(categories) and categories.str.len().max() > MAX_ID_LENGTH:
                    return f"a {column} id over {MAX_ID_LENGTH:,} characters"
        return None

    def _underflow(self, zero, skip):
        """The problem when a rating read as 0 (rows ``zero``) is written as a non-zero number
        below even float64's smallest subnormal ('1e-400': float64 holds 0, so float32 cannot
        tell), else None. Reads the ratings again as text: only files with zero ratings pay."""
        as_text = copy.copy(self)
        as_text.rating_as_text = True
        frame, bad = as_text.parse(skip)
        if bad is None and _nonzero_text(frame["rating"][zero]).any():
            bad = "a non-zero rating is too small for float64"
        return bad

    def diagnose(self, first_only):
        """(line number, problem) for bad lines, read line by line (only after a failed parse)."""
        problems = []
        expected = len(self.fields)
        with io.TextIOWrapper(self.open_stream(), encoding=self.encoding, errors="replace",
                              newline=None) as fh:
            for number, line in enumerate(_bounded_lines(fh), start=1):
                if number == self.header:
                    continue
                if _is_blank(line) and (self.sep == "whitespace" or self.sep[0] not in line):
                    continue  # blank, as pandas sees it (a line of tabs is not, in a tab file)
                problem = self._check_line(line, expected)
                if problem:
                    problems.append((number, problem))
                    if first_only:
                        break
        return problems

    def _check_line(self, line, expected):
        line = line.rstrip("\r\n")
        if len(line) > MAX_LINE:
            return f"a line of over {MAX_LINE:,} characters (is this a rating file?): {shown(line)}"
        if "\x00" in line:
            return (f"a NUL byte (is this a text file? UTF-16 text needs encoding='utf-16'): "
                    f"{shown(line)}")
        fields = _split(line, self.sep)
        if self.sep != "whitespace":
            fields = [f.strip(_SPACE) for f in fields]
        if len(fields) != expected:
            return (f"{len(fields)} field(s), expected {expected} "
                    f"({', '.join(c or '-' for c in self.fields)}): {shown(line)}")
        for column, value in zip(self.fields, fields):
            if column in ("user", "item"):
                if not value:
                    return f"empty {column} id"
                if len(value) > MAX_ID_LENGTH:
                    return (f"{column} id of {len(value):,} characters (an id may have at most "
                            f"{MAX_ID_LENGTH:,}): {shown(value, 60)}")
                if self.ids == "int" and not _is_int(value):
                    return Message("{0} id {1} is not an integer (pass {2} for string ids)",
                                   column, shown(value), Setting("ids", "str"))
                if self.ids == "int" and not -2**63 <= int(value) < 2**63:
                    return f"{column} id {shown(value)} does not fit in 64 bits"
            elif column == "rating":
                problem = _rating_problem(value)
                if problem:
                    return problem
            elif column == "timestamp":
                if not _is_int(value):
                    return f"timestamp {shown(value)} is not an integer"
                if not -2**63 <= int(value) < 2**63:
                    return f"timestamp {shown(value)} does not fit in 64 bits"
        if "\ufffd" in line:
            return (f"text is not valid {self.encoding.upper()}" + (
                " (pass encoding=, e.g. encoding='latin-1')" if self.encoding == "utf-8" else ""))
        return None


def _as_float32(ratings):
    """(float32 ratings, None), or (None, the problem) when one is not finite in float32 or
    is non-zero but would become 0 (read in float64 first to tell)."""
    with np.errstate(over="ignore", under="ignore"):
        single = ratings.astype(np.float32)
    if not np.isfinite(single).all():
        return None, "a rating is not a finite float32 number"
    if np.count_nonzero(single == 0) != np.count_nonzero(ratings == 0):
        return None, "a non-zero rating is too small for float32"
    return single, None


def _nonzero_text(texts):
    """Whether each rating text (a Series of str) writes a non-zero number: a digit 1-9
    before any exponent ('0e5' and '-0.0' are zeros, '1e-400' and '0.00...01' are not)."""
    mantissa = texts.astype(str).str.strip(_SPACE).str.lower().str.partition("e")[0]
    return mantissa.str.contains("[1-9]", regex=True).to_numpy(dtype=bool)


def _bounded_lines(fh):
    """The lines of text stream ``fh``, each cut to its first ``MAX_LINE + 1`` characters
    (the rest of a longer line is skipped: a giant line costs no giant string)."""
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        yield line
        while len(line) == MAX_LINE + 1 and not line.endswith("\n"):
            line = fh.readline(MAX_LINE + 1)


def _id_forms(layout):
    """(padded, fractional): whether some id of the file (read by ``layout`` as text) is
    an integer not written as its plain decimal ("007", "+7", "-0"), and whether some is a
    number with a fraction or an exponent ("1.0", "1e3"). Read as integers, "007" and "7"
    would silently become one id, "1e3" would become 1000, and output would not give back
    the ids read. (False, False) when the text reading fails (the integer one reports it)."""
    frame, bad = layout.parse()
    if bad is not None:
        return False, False
    padded = fractional = False
    for column in ("user", "item"):
        ids = frame[column].astype("category").cat.categories.astype(str).str.strip(_SPACE)
        padded |= bool((ids.str.fullmatch(r"[+-]?[0-9]+")
                        & ~ids.str.fullmatch(r"0|-?[1-9][0-9]*")).any())
        fractional |= bool((ids.str.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
                            & ~ids.str.fullmatch(r"[+-]?[0-9]+")).any())
    return padded, fractional


def _finish(frame):
    """The columns in the order user, item, rating, timestamp; integer ids int32 where they
    fit, string ids categories."""
    order = [c for c in COLUMNS if c in frame]
    if list(frame.columns) != order:
        frame = frame.reindex(columns=order)  # a new frame, not a view (no chained assignment)
    for column in ("user", "item"):
        values = frame[column]
        if values.dtype.kind in "OUT" or str(values.dtype) == "str":
            frame[column] = values.astype("category")
        elif values.dtype == np.int64 and len(values):
            lo, hi = values.min(), values.max()
            if np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max:
                frame[column] = values.astype(np.int32)
    return frame


def _integers(path, values, what):
    """A numeric column as int64; a missing, fractional or out-of-range value is an error."""
    if values.dtype.kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{path}: {what} {values.max()} does not fit in 64 bits")
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(array) | (np.abs(array) >= 2.0**63)
    bad[~bad] = array[~bad] != np.round(array[~bad])
    if bad.any():
        row = int(bad.argmax())
        raise ValueError(f"{path}: {what} {float(array[row])!r} at row {row} is not an integer")
    return array.astype(np.int64)


def _read_parquet(path, min_fields, columns=None):
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError(f"reading {path} needs a Parquet engine: pip install pyarrow") from exc
    except Exception as exc:  # the engines raise their own types for a bad file
        raise ValueError(f"{path}: cannot read the Parquet file ({exc})") from exc
    if columns is not None:  # the file's columns in order
        if len(columns) != len(frame.columns):
            raise ValueError(f"{path}: columns names {len(columns)} column(s) but the file has "
                             f"{len(frame.columns)}: {list(frame.columns)}")
        frame = frame.set_axis(columns, axis=1)
    lower = {str(c).lower(): c for c in frame.columns}
    chosen = {}
    for column, aliases in ALIASES.items():
        found = [lower[a] for a in aliases if a in lower]
        if found:
            chosen[column] = found[0]
    required = ("user", "item", "rating")[:min_fields]
    missing = [c for c in required if c not in chosen]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} column among {list(frame.columns)}")
    out = pd.DataFrame({c: frame[src] for c, src in chosen.items()})
    for column in ("user", "item"):
        values = out[column]
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise ValueError(f"{path}: missing {column} id at row {row}")
        if values.dtype.kind == "b":
            raise ValueError(f"{path}: the {column} ids are booleans, not ids")
        if values.dtype.kind in "iuf":
            out[column] = _integers(path, values, f"{column} id")
        else:
            text = values.astype(str)
            empty = (text.str.strip() == "").to_numpy()
            if empty.any():
                raise ValueError(f"{path}: empty {column} id at row {int(empty.argmax())}")
            long = (text.str.len() > MAX_ID_LENGTH).to_numpy()
            if long.any():
                row = int(long.argmax())
                raise ValueError(f"{path}: {column} id at row {row} has {len(text.iloc[row]):,} "
                                 f"characters (an id may have at most {MAX_ID_LENGTH:,})")
            out[column] = text.astype("category")
    if "rating" in out:
        try:
            rating = out["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: the rating column is not numeric ({exc})") from None
        with np.errstate(over="ignore", under="ignore"):
            rating32 = rating.astype(np.float32)
        bad = ~np.isfinite(rating32)   # (beyond float32's 3.4e38 too, as the text readers)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{path}: rating {float(rating[row])!r} at row {row} is missing or "
                             "not a finite float32 number")
        text = out["rating"].dtype.kind not in "iufb"   # ('1e-400' is 0 even in float64)
        tiny = (rating32 == 0) & (rating != 0)
        if text and not rating.all():
            tiny |= (rating == 0) & _nonzero_text(out["rating"])
        if tiny.any():
            row = int(np.argmax(tiny))
            value = str(out["rating"].iloc[row]) if text else repr(float(rating[row]))
            raise ValueError(f"{path}: {_rating_problem(value)} (row {row})")
        out["rating"] = rating32
    if "timestamp" in out:
        stamps = out["timestamp"]
        if stamps.dtype.kind == "M":
            if stamps.isna().any():
                raise ValueError(f"{path}: missing timestamp at row "
                                 f"{int(stamps.isna().to_numpy().argmax())}")
            out["timestamp"] = stamps.astype("int64") // 10**9
        elif stamps.dtype.kind in "iuf":
            out["timestamp"] = _integers(path, stamps, "timestamp")
        else:
            raise ValueError(f"{path}: the timestamp column holds {stamps.dtype} values, "
                             "not integers or datetimes")
    return _finish(out[[c for c in COLUMNS if c in out]])
