# cython: language_level=3
"""A fast path for plain rating files: ``user SEP item SEP rating [SEP timestamp]`` lines.

``parse_block`` parses a block of complete lines into preallocated arrays
without the GIL, for a separator of one or two bytes (``::``, tab, comma,
semicolon). It accepts only the plain form (optionally signed integers, a
decimal rating without exponent, LF or CRLF line ends, blank lines); anything
else makes it stop, and the caller falls back to the general pandas reader,
which explains problems line by line.
"""
from libc.stdint cimport int64_t

cdef enum:
    MAX_DIGITS = 18  # so many decimal digits always fit in int64

cdef double[19] POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                         1e13, 1e14, 1e15, 1e16, 1e17, 1e18]


cdef inline Py_ssize_t _int(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end,
                            int64_t* out) noexcept nogil:
    """Parse [-]digits at pos; return the position after it, or -1."""
    cdef bint negative = False
    cdef int64_t value = 0
    cdef Py_ssize_t start
    if pos < end and s[pos] == c'-':
        negative = True
        pos += 1
    start = pos
    while pos < end and c'0' <= s[pos] <= c'9':
        value = value * 10 + (s[pos] - c'0')
        pos += 1
    if pos == start or pos - start > MAX_DIGITS:
        return -1
    out[0] = -value if negative else value
    return pos


cdef inline Py_ssize_t _decimal(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end,
                                double* out) noexcept nogil:
    """Parse [-]digits[.digits] at pos; return the position after it, or -1."""
    cdef bint negative = False
    cdef int64_t mantissa = 0
    cdef Py_ssize_t digits = 0, fraction = 0
    if pos < end and s[pos] == c'-':
        negative = True
        pos += 1
    while pos < end and c'0' <= s[pos] <= c'9':
        mantissa = mantissa * 10 + (s[pos] - c'0')
        digits += 1
        pos += 1
    if pos < end and s[pos] == c'.':
        pos += 1
        while pos < end and c'0' <= s[pos] <= c'9':
            mantissa = mantissa * 10 + (s[pos] - c'0')
            digits += 1
            fraction += 1
            pos += 1
    if digits == 0 or digits > MAX_DIGITS:
        return -1
    out[0] = (-1.0 if negative else 1.0) * <double>mantissa / POW10[fraction]
    return pos


cdef inline Py_ssize_t _sep(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end,
                            unsigned char sep0, unsigned char sep1, int seplen) noexcept nogil:
    if seplen == 1:
        return pos + 1 if pos < end and s[pos] == sep0 else -1
    if pos + 1 < end and s[pos] == sep0 and s[pos + 1] == sep1:
        return pos + 2
    return -1


def parse_block(const unsigned char[::1] block, bytes sep, int n_fields, int64_t[::1] users,
                int64_t[::1] items, float[::1] ratings, int64_t[::1] times, Py_ssize_t row):
    """Parse whole lines of ``block`` into the arrays from index ``row`` on.

    Returns (next row, lines read, failed, offset): ``failed`` is True when a line is
    not in the plain form (or the arrays are full); ``lines read`` then counts
    the lines before it, and ``offset`` is where that line starts in ``block`` (where
    to go on once the arrays have room again; ``len(block)`` when all was read).
    """
    if not 1 <= len(sep) <= 2 or sep in (b"\r", b"\n"):
        raise ValueError(f"separator must be one or two bytes, got {sep!r}")
    cdef unsigned char sep0 = sep[0], sep1 = sep[len(sep) - 1]
    cdef int seplen = len(sep)
    cdef const unsigned char* s = &block[0] if block.shape[0] else NULL
    cdef Py_ssize_t end = block.shape[0], pos = 0, capacity = users.shape[0], lines = 0
    cdef Py_ssize_t line_start = 0
    cdef int64_t u = 0, i = 0, t = 0
    cdef double r = 0
    cdef bint failed = False
    with nogil:
        while pos < end:
            if s[pos] == c'\n':
                pos += 1
                lines += 1
                continue
            if s[pos] == c'\r' and pos + 1 < end and s[pos + 1] == c'\n':
                pos += 2
                lines += 1
                continue
            line_start = pos
            if row >= capacity:
                failed = True
                break
            pos = _int(s, pos, end, &u)
            if pos >= 0:
                pos = _sep(s, pos, end, sep0, sep1, seplen)
            if pos >= 0:
                pos = _int(s, pos, end, &i)
            if pos >= 0:
                pos = _sep(s, pos, end, sep0, sep1, seplen)
            if pos >= 0:
                pos = _decimal(s, pos, end, &r)
            if pos >= 0 and n_fields == 4:
                pos = _sep(s, pos, end, sep0, sep1, seplen)
                if pos >= 0:
                    pos = _int(s, pos, end, &t)
            if pos >= 0 and pos < end and s[pos] == c'\r':
                pos += 1
            if pos < 0 or (pos < end and s[pos] != c'\n'):
                failed = True
                break
            users[row] = u
            items[row] = i
            ratings[row] = <float>r
            if n_fields == 4:
                times[row] = t
            row += 1
            lines += 1
            pos += 1
    return row, lines, failed, line_start if failed else end
