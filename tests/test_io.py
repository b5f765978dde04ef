"""Rating-file readers: every layout on small files written here, each malformed case, real data."""
import bz2
import gzip
import io
import lzma
import os
import re
import threading
import warnings
import zipfile

import numpy as np
import pytest

import mfcore
import fuzz_harness
from conftest import peak_allocation
from mfcore import io as io_module
from mfcore.io import read_pairs, read_ratings

pd = pytest.importorskip("pandas")

ROWS = [(1, 10, 5, 881250949), (1, 20, 3, 881250950), (2, 10, 4, 881250951), (3, 30, 1, 881250952)]


def write(path, text, mode="w"):
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(os.path.splitext(str(path))[1], open)
    data = text.encode() if "b" in mode else text
    with opener(path, mode) as fh:
        fh.write(data)
    return str(path)


def lines(sep, rows=ROWS, eol="\n", header=None, cols=4):
    body = "".join(sep.join(str(v) for v in row[:cols]) + eol for row in rows)
    return (header + eol if header else "") + body


def check(frame, cols=4):
    expected = ["user", "item", "rating", "timestamp"][:cols]
    assert list(frame.columns) == expected
    assert frame["user"].dtype == np.int32 and frame["item"].dtype == np.int32
    assert frame["rating"].dtype == np.float32
    np.testing.assert_array_equal(frame["user"], [r[0] for r in ROWS])
    np.testing.assert_array_equal(frame["item"], [r[1] for r in ROWS])
    np.testing.assert_allclose(frame["rating"], [r[2] for r in ROWS])
    if cols == 4:
        assert frame["timestamp"].dtype == np.int64
        np.testing.assert_array_equal(frame["timestamp"], [r[3] for r in ROWS])


@pytest.mark.parametrize("name, sep, eol, header", [
    ("ratings.dat", "::", "\n", None),
    ("ratings_crlf.dat", "::", "\r\n", None),
    ("u.data", "\t", "\n", None),
    ("u1.base", "\t", "\r\n", None),
    ("ratings.csv", ",", "\n", "userId,movieId,rating,timestamp"),
    ("ratings_crlf.csv", ",", "\r\n", "userId,movieId,rating,timestamp"),
    ("noheader.csv", ",", "\n", None),
    ("spaces.txt", " ", "\n", None),
    ("semicolon.csv", ";", "\n", "user;item;rating;timestamp"),
])
def test_layouts_are_detected(tmp_path, name, sep, eol, header):
    path = write(tmp_path / name, lines(sep, eol=eol, header=header), mode="w" if eol == "\n" else "wb")
    check(read_ratings(path))


def test_three_columns_and_half_star_ratings(tmp_path):
    path = write(tmp_path / "r.csv", "1,10,4.5\n2,10,0.5\n")
    frame = read_ratings(path)
    assert list(frame.columns) == ["user", "item", "rating"]
    np.testing.assert_allclose(frame["rating"], [4.5, 0.5])


def test_a_bad_first_line_is_an_error_not_a_header(tmp_path):
    # regression: '1<tab>10<tab>five' was taken for a header and silently dropped
    path = write(tmp_path / "r.tsv", "1\t10\tfive\n2\t20\t4\n3\t30\t5\n")
    with pytest.raises(ValueError, match="r.tsv, line 1: rating 'five' is not a finite number"):
        read_ratings(path)
    with pytest.warns(UserWarning, match="skipped 1 bad line.*line 1"):
        assert list(read_ratings(path, on_bad_lines="skip")["user"]) == [2, 3]


@pytest.mark.parametrize("text, match", [
    ("score,cust,prod\n5,1,10\n", "does not know: 'cust', 'prod'"),
    ("user,user,rating\n1,2,5\n", "names the user column more than once"),
    ("user,item,rating\n1,10,5,99\n", "the header names 3 column.*4 field"),
    ("rating,stars,score\n1,10,5\n", "names the rating column more than once"),
])
def test_unknown_or_inconsistent_header_names_are_errors(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_ratings(write(tmp_path / "r.csv", text))


def test_columns_name_the_file_columns_in_order(tmp_path):
    path = write(tmp_path / "r.csv", "score,cust,prod\n5,1,10\n3,2,20\n")
    for columns in (["rating", "user", "item"], "rating, user, item"):
        frame = read_ratings(path, columns=columns)
        assert list(frame.columns) == ["user", "item", "rating"]
        np.testing.assert_array_equal(frame["user"], [1, 2])
        np.testing.assert_array_equal(frame["item"], [10, 20])
        np.testing.assert_allclose(frame["rating"], [5, 3])
    headerless = write(tmp_path / "h.tsv", "10\t1\t4\n20\t2\t5\n")   # the fast parser too
    frame = read_ratings(headerless, columns=["item", "user", "rating"])
    np.testing.assert_array_equal(frame["user"], [1, 2])
    with pytest.raises(ValueError, match="columns: unknown name.*'stars'"):
        read_ratings(path, columns=["stars", "user", "item"])
    with pytest.raises(ValueError, match="columns names 4 column"):
        read_ratings(path, columns=["rating", "user", "item", "timestamp"])
    with pytest.raises(ValueError, match="must include user, item, rating"):
        read_ratings(path, columns=["timestamp", "user", "item"])


def test_header_names_reorder_columns(tmp_path):
    path = write(tmp_path / "r.csv", "movieId,userId,rating\n10,1,5\n20,2,3\n")
    frame = read_ratings(path)
    np.testing.assert_array_equal(frame["user"], [1, 2])
    np.testing.assert_array_equal(frame["item"], [10, 20])


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_compressed_files(tmp_path, suffix):
    check(read_ratings(write(tmp_path / ("ratings.dat" + suffix), lines("::"), mode="wt")))


def test_zip_archive_picks_the_rating_file(tmp_path):
    path = tmp_path / "ml.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/README", "not ratings")
        archive.writestr("ml-1m/ratings.dat", lines("::"))
        archive.writestr("ml-1m/movies.dat", "1::Toy Story::Animation\n")
    check(read_ratings(path))
    frame = read_ratings(path, member="ml-1m/ratings.dat")
    assert len(frame) == len(ROWS)
    with pytest.raises(ValueError, match="no member"):
        read_ratings(path, member="ml-1m/nope.dat")


def test_explicit_separator_and_header_override(tmp_path):
    path = write(tmp_path / "odd.txt", "1\t10\t5\n2\t20\t4\n")
    assert len(read_ratings(path, sep="\t", header=False)) == 2
    # forcing a header takes the first line as names, and these are not column names
    with pytest.raises(ValueError, match="does not know: '1', '10', '5'.*columns="):
        read_ratings(path, sep="tab", header=True)
    assert len(read_ratings(path, sep="tab", header=True, columns=["user", "item", "rating"])) == 1
    with pytest.raises(ValueError, match="sep must be one of"):
        read_ratings(path, sep="|")


def test_string_ids_become_categories(tmp_path):
    path = write(tmp_path / "s.csv", "user,item,rating\nalice,matrix,5\nbob,matrix,3\nalice,alien,4\n")
    frame = read_ratings(path)
    assert str(frame["user"].dtype) == "category"
    assert list(frame["user"]) == ["alice", "bob", "alice"]
    model = mfcore.Model(k=2, epochs=2).fit(frame["user"], frame["item"], frame["rating"])
    assert np.isfinite(model.predict(["alice"], ["matrix"])).all()


def test_ids_too_large_for_int32_stay_int64(tmp_path):
    path = write(tmp_path / "big.tsv", f"{2**40}\t1\t5\n1\t{2**35}\t3\n")
    frame = read_ratings(path)
    assert frame["user"].dtype == np.int64 and frame["user"][0] == 2**40
    assert frame["item"].dtype == np.int64


@pytest.mark.parametrize("text, line, match", [
    ("1::10::5::1\n2::20\n", 2, "2 field"),                       # short line
    ("1::10::5::1\n2::20::4::1::9\n", 2, "5 field"),              # long line
    ("1::10::5::1\n2::20::four::1\n", 2, "rating 'four'"),        # non-numeric rating
    ("1::10::5::1\n\n2::20::nan::1\n", 3, "rating 'nan'"),          # NaN rating, after a blank line
    ("1::10::5::1\n2::20::::1\n", 2, "rating ''"),                 # empty rating
    ("1::10::5::1\nx::20::4::1\n", 2, "user id 'x' is not an integer"),
    ("1::10::5::1\n2::20::4::soon\n", 2, "timestamp 'soon'"),
    ("1::10::5::1\n2:20::4::1\n", 2, "field"),                      # a lone colon
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path / "bad.dat", text)
    with pytest.raises(ValueError, match=f"bad.dat, line {line}: .*{match}"):
        read_ratings(path)


@pytest.mark.parametrize("text, match", [
    ("1,10,5\n2,20\n", "line 2: 2 field"),
    ("1\t10\t5\n\t\n2\t20\t4\n", "line 2: 2 field.*'\\\\t'"),   # a line of one tab is not blank
    ("1,10,5\n2,20,inf\n", "line 2: rating 'inf'"),
    ("1\t2\n", "the first line has 2 field"),
    ("a\tb\n", "the first line has 2 field"),
])
def test_malformed_csv_and_tab(tmp_path, text, match):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=match):
        read_ratings(path)


def test_empty_header_only_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="empty file"):
        read_ratings(write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="empty file"):
        read_ratings(write(tmp_path / "blank.csv", "\n\n  \n"))
    with pytest.raises(ValueError, match="only a header"):
        read_ratings(write(tmp_path / "head.csv", "userId,movieId,rating\n"))
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_ratings(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is a folder"):
        read_ratings(tmp_path)
    with pytest.raises(ValueError, match="not a valid zip"):
        read_ratings(write(tmp_path / "fake.zip", "1,2,3\n"))


def test_bad_lines_are_skipped_only_when_asked(tmp_path):
    path = write(tmp_path / "mixed.tsv", "1\t10\t5\n2\t20\n3\t30\tx\n4\t40\t2\n")
    with pytest.warns(UserWarning, match="skipped 2 bad line"):
        frame = read_ratings(path, on_bad_lines="skip")
    np.testing.assert_array_equal(frame["user"], [1, 4])
    with pytest.raises(ValueError, match="on_bad_lines"):
        read_ratings(path, on_bad_lines="ignore")


def test_read_pairs_allows_a_missing_rating(tmp_path):
    frame = read_pairs(write(tmp_path / "pairs.csv", "user,item\n1,10\n2,20\n"))
    assert list(frame.columns) == ["user", "item"]
    with pytest.raises(ValueError, match="expected user, item, rating"):
        read_ratings(write(tmp_path / "pairs2.csv", "1,10\n2,20\n"))
    # two string ids are a pair, not a header (unless both are column names)
    frame = read_pairs(write(tmp_path / "pairs3.csv", "u1,i3\nu2,i4\n"))
    assert list(frame["user"]) == ["u1", "u2"]


def test_parquet_when_pyarrow_is_installed(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is optional; Parquet needs it")
    source = pd.DataFrame({"userId": [1, 1, 2, 3], "movieId": [10, 20, 10, 30],
                           "rating": [5.0, 3.0, 4.0, 1.0], "timestamp": [r[3] for r in ROWS]})
    source.to_parquet(tmp_path / "r.parquet")
    check(read_ratings(tmp_path / "r.parquet"))


def test_reading_does_not_need_pandas_at_import(tmp_path):
    import subprocess
    import sys
    # the mfcore under test (installed, or built in place), not an unbuilt source folder in cwd
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfcore.__file__)))
    code = "import sys, mfcore; assert 'pandas' not in sys.modules, 'pandas imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


def test_real_movielens_100k(ml100k):
    frame = read_ratings(ml100k("u.data"))
    assert len(frame) == 100_000
    assert frame["user"].nunique() == 943 and frame["item"].nunique() == 1_682
    assert abs(float(np.mean(frame["rating"].to_numpy(), dtype=np.float64)) - 3.52986) < 1e-5
    assert list(np.bincount(frame["rating"].astype(int))[1:]) == [6110, 11370, 27145, 34174, 21201]
    assert len(read_ratings(ml100k("u1.base"))) == 80_000


# --- the compiled '::' parser agrees with the general (pandas) path ----------------------

def _general_path(monkeypatch):
    import mfcore.io as mio
    monkeypatch.setattr(mio, "_parse_fast", lambda *a: None)


@pytest.mark.parametrize("block, sep, header", [(7, "::", None), (64, "::", None),
                                               (1 << 23, "::", None), (5, "\t", None),
                                               (64, ",", "userId,movieId,rating,timestamp"),
                                               (1 << 23, ";", "user;item;rating;time")])
def test_fast_parser_matches_the_general_path(tmp_path, monkeypatch, block, sep, header):
    import mfcore.io as mio
    rng = np.random.default_rng(block)
    n = 500
    users = rng.integers(-5, 2**40, n)
    items = rng.integers(1, 10**6, n)
    ratings = rng.choice(["1", "2.5", "4.", "0.5", "5", "3.25", "-1"], n)
    stamps = rng.integers(0, 2**33, n)
    eols = rng.choice(["\n", "\r\n", "\n\n"], n)
    text = "".join(sep.join(map(str, fields)) + e
                   for *fields, e in zip(users, items, ratings, stamps, eols))
    text = (header + "\n" if header else "") + text.rstrip("\n")    # no final newline
    path = write(tmp_path / "r.dat", text, mode="wb")
    monkeypatch.setattr(mio, "_FAST_BLOCK", block)
    calls = []
    real = mio._parse_fast

    def spy(*args):
        frame = real(*args)
        calls.append(frame is not None)
        return frame
    monkeypatch.setattr(mio, "_parse_fast", spy)
    fast = read_ratings(path)
    assert calls == [True]
    _general_path(monkeypatch)
    general = read_ratings(path)
    pd.testing.assert_frame_equal(fast, general)
    np.testing.assert_array_equal(fast["user"], users)
    assert fast["user"].dtype == np.int64


@pytest.mark.parametrize("text", [
    "1::10::4e0::5\n2::20::3::6\n",          # exponent: the general path reads it
    '1,10,4,5\n"2",20,3,6\n',                # quotes
    "1,10,4,5\n2, 20, 3, 6\n",               # spaces after the commas
    "1::10::4::5\n 2::20::3::6\n",           # a leading space
    "1::10::4::5\n2::20::3::123456789012345678901\n",  # too many digits for the fast path
])
def test_unusual_colon_files_fall_back_to_the_general_path(tmp_path, text):
    path = write(tmp_path / "odd.dat", text)
    try:
        frame = read_ratings(path)
    except ValueError as exc:            # then the general path explains the line
        assert "odd.dat, line 2" in str(exc)
    else:
        assert len(frame) == 2


def test_fast_path_three_columns_and_a_compressed_file(tmp_path):
    check(read_ratings(write(tmp_path / "r3.dat.gz", lines("::", cols=3), mode="wt")), cols=3)


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_truncated_compressed_file_is_named(tmp_path, suffix):
    good = write(tmp_path / ("r.dat" + suffix), lines("::", rows=ROWS * 2000), mode="wt")
    data = open(good, "rb").read()
    bad = tmp_path / ("cut.dat" + suffix)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.dat.*cannot read the file"):
        read_ratings(bad)


def test_any_layout_round_trips_random_ratings(tmp_path):
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    row = st.tuples(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1),
                    st.sampled_from([0.5, 1.0, 2.5, 3.0, 4.5, 5.0]), st.integers(0, 2**40))
    layouts = [("r.dat", "::", None), ("r.tsv", "\t", None), ("r.csv", ",", "user,item,rating,ts"),
               ("r.dat.gz", "::", None), ("r.csv.bz2", ",", None)]

    @settings(max_examples=30, deadline=None)
    @given(rows=st.lists(row, min_size=1, max_size=40), layout=st.sampled_from(layouts),
           crlf=st.booleans())
    def round_trip(rows, layout, crlf):
        name, sep, header = layout
        text = lines(sep, rows=rows, eol="\r\n" if crlf else "\n", header=header)
        path = write(tmp_path / name, text, mode="wb")
        frame = read_ratings(path)
        assert len(frame) == len(rows)
        for column, values in zip(["user", "item", "rating", "timestamp"], zip(*rows)):
            np.testing.assert_array_equal(frame[column].to_numpy(), np.array(values))

    round_trip()


def test_skipping_every_line_is_an_error_and_no_numpy_warning_leaks(tmp_path):
    # fuzzing findings: all lines skipped gave an empty frame; a short line leaked numpy's
    # "invalid value encountered in cast" RuntimeWarning
    with pytest.raises(ValueError, match="no ratings: all 1 line.*are bad, the first at line 1"):
        read_ratings(write(tmp_path / "bad.dat", "0::0::\x001\n"), on_bad_lines="skip")
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_ratings(write(tmp_path / "short.tsv", "0\t0\t1\n1e308"), on_bad_lines="skip")
    assert len(frame) == 1
    assert [w.category.__name__ for w in caught] == ["BadLinesWarning"]


@pytest.mark.parametrize("columns, match", [
    ({"user": [1.0, 2.5], "item": [1, 2], "rating": [4, 5]}, "user id 2.5 at row 1 is not an int"),
    ({"user": [1, 2], "item": [1.0, float("inf")], "rating": [4, 5]}, "item id inf at row 1"),
    ({"user": ["a", " "], "item": [1, 2], "rating": [4, 5]}, "empty user id at row 1"),
    ({"user": [True, False], "item": [1, 2], "rating": [4, 5]}, "booleans"),
    ({"user": [1, 2], "item": [1, 2], "rating": ["x", "5"]}, "rating column is not numeric"),
    ({"user": [1, 2], "item": [1, 2], "rating": [4, 3.5e38]}, "rating 3.5e.38 at row 1"),
    ({"user": [1, 2], "item": [1, 2], "rating": [4, 5], "ts": ["a", "b"]}, "timestamp column"),
    ({"user": [1, 2], "item": [1, 2], "rating": [4, 5], "ts": [1.0, 2.5]}, "timestamp 2.5"),
])
def test_parquet_values_are_checked_not_truncated(tmp_path, columns, match):
    # fuzzing findings: float ids were truncated (2.5 -> 2), non-numeric timestamps kept
    pytest.importorskip("pyarrow", reason="pyarrow is optional; Parquet needs it")
    pd.DataFrame(columns).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(ValueError, match=match):
        read_ratings(tmp_path / "r.parquet")
    whole = pd.DataFrame({"user": [1.0, 2.0], "item": [3, 4], "rating": [4, 5], "ts": [9.0, 8.0]})
    whole.to_parquet(tmp_path / "ok.parquet")
    frame = read_ratings(tmp_path / "ok.parquet")
    assert list(frame["user"]) == [1, 2] and list(frame["timestamp"]) == [9, 8]
    assert frame["timestamp"].dtype == np.int64


@pytest.mark.parametrize("text, match", [
    (b"1,2,3\n\x0c\n", "line 2: 1 field"),            # a form feed is no blank line to pandas
    (b"1,2,3\n\x00\n", "line 2: a NUL byte"),
    (b"a,b,5\nc\x00,d,4\n", "line 2: a NUL byte"),     # string ids: no NUL kept in an id
    (b"\x00\n", "the first line has 1 field"),         # one field is no header
    (b"1,2,3\n1_0,2,3\n", "line 2: user id '1_0' is not an integer"),
])
def test_lines_and_numbers_as_the_parser_sees_them(tmp_path, text, match):
    # fuzzing findings: Python's idea of blank lines, line breaks and numbers (\x0c, \x1c, 1_0)
    # differed from the parser's, so bad lines went unnamed or NUL bytes into string ids
    path = tmp_path / "r.csv"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=match):
        read_ratings(path)


@pytest.mark.parametrize("text", [b"\nuser\titem\trating\n1\t10\t5\n",
                                  b"\n \r\nuser,item,rating\r\n1,10,5\n",
                                  b"\r\ruser;item;rating\r1;10;5\r"])
def test_a_header_after_blank_lines(tmp_path, text):
    # fuzzing finding: the header was looked for on line 1 only, so after a blank line it was
    # read as data (an error naming it, or a 'skipped bad line' with on_bad_lines="skip")
    path = tmp_path / "r.dat"
    path.write_bytes(text)
    for mode in ("error", "skip"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            frame = read_ratings(path, on_bad_lines=mode)
        assert frame.to_dict("list") == {"user": [1], "item": [10], "rating": [5.0]}


@pytest.mark.parametrize("text, users", [
    (b"user\titem\trating\r0\t0\t1\r\n7\t0\t1\r\n", [0, 7]),
    (b"user\titem\trating\r0\t0\t1\r\n", [0]),
    (b"user::item::rating\r1::2::3\n4::5::6\n", [1, 4]),
    (b"user,item,rating\r1,2,3", [1]),
])
def test_a_header_ending_in_a_lone_cr_keeps_the_first_row(tmp_path, text, users):
    # fuzzing finding: the compiled path skipped the header up to the first LF, so a header
    # ended by a lone CR took the first data line with it (a row silently lost, or no rows)
    path = tmp_path / "r.dat"
    path.write_bytes(text)
    assert list(read_ratings(path)["user"]) == users


@pytest.mark.parametrize("offset, value, match", [(8, 9, "compression method 9"),
                                                  (6, 1, "is encrypted"),
                                                  (6, 0x20, "cannot be read here"),
                                                  (4, 84, "zip file version 8.4")])
def test_zip_members_it_cannot_read_are_value_errors(tmp_path, offset, value, match):
    # fuzzing findings: a flipped method or encryption flag in the zip's central directory
    # raised zipfile's NotImplementedError / RuntimeError
    path = tmp_path / "r.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ratings.dat", lines("::"))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + offset + 2] = value     # +2: the central header's 'version made by' first
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=match):
        read_ratings(path)


# --- decompression bombs (issue 20, D3) ------------------------------------------------------

BOMB_TEXT = b"1,1,4\n" + b"\n" * (16 << 20) + b"2,2,3\n"   # 16 MiB of blank lines


def _zip_bomb(path, method, declared=None):
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("ratings.csv")
        info.compress_type = method
        archive.writestr(info, BOMB_TEXT)
        if declared is not None:   # the central directory lies about the size
            archive.filelist[-1].file_size = declared


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_zip_member_declaring_a_bomb_ratio_is_refused_before_inflating(tmp_path, method):
    path = tmp_path / "r.zip"
    _zip_bomb(path, method)
    assert path.stat().st_size < 10_000
    outcome, peak = peak_allocation(lambda: read_ratings(path))
    assert isinstance(outcome, ValueError) and "decompression bomb" in str(outcome), outcome
    assert peak < 4 << 20


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                    zipfile.ZIP_LZMA])
def test_a_zip_member_stops_inflating_at_its_declared_size(tmp_path, method):
    path = tmp_path / "r.zip"
    _zip_bomb(path, method, declared=300)
    outcome, peak = peak_allocation(lambda: read_ratings(path))
    assert isinstance(outcome, ValueError), outcome
    assert re.search("inflates to more than 300 bytes|CRC|cannot read the file", str(outcome))
    assert peak < (4 << 20 if method != zipfile.ZIP_STORED else 24 << 20)  # (stored: on disk)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                    zipfile.ZIP_LZMA])
def test_zip_members_of_every_method_read_right_and_blank_lines_cost_no_rows(tmp_path, method):
    path = tmp_path / "r.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("ratings.csv")
        info.compress_type = method
        archive.writestr(info, b"1,1,4\n" + b"\n" * 5000 + b"2,2,3\n")
    frame = read_ratings(path)
    assert frame.to_dict("list") == {"user": [1, 2], "item": [1, 2], "rating": [4.0, 3.0]}


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress),
                                              (".xz", lzma.compress)])
def test_a_compressed_file_inflating_over_the_ratio_stops_early(tmp_path, suffix, compress):
    path = tmp_path / ("r.csv" + suffix)
    path.write_bytes(compress(BOMB_TEXT))
    outcome, peak = peak_allocation(lambda: read_ratings(path))
    if suffix == ".gz":   # deflate cannot exceed ~1032:1, so it reads (bounded by the ratio)
        assert list(outcome["user"]) == [1, 2]
        assert peak < 96 << 20   # (about 4x the 16 MiB of text: bounded by the ratio)
    else:
        assert isinstance(outcome, ValueError) and "decompression bomb" in str(outcome), outcome
        assert peak < 24 << 20


# --- string ids, byte for byte (issue 20, D4) -------------------------------------------------

NUMERIC_LOOKING = ["007", "7", "1e3", "1000", "0196", "196", "1", "1.0", "inf", "Infinity",
                   "True", "TRUE", "-0", "0", "+7", "0042"]


@pytest.mark.parametrize("sep", [",", "\t", "::"])
def test_string_ids_are_read_byte_for_byte_never_as_numbers(tmp_path, sep):
    path = tmp_path / "r.txt"
    path.write_text("".join(f"{u}{sep}{u}{sep}{n % 5 + 1}\n" for n, u in enumerate(NUMERIC_LOOKING)))
    frame = read_ratings(path, ids="str")
    assert [str(u) for u in frame["user"]] == NUMERIC_LOOKING
    assert [str(i) for i in frame["item"]] == NUMERIC_LOOKING
    assert frame["user"].dtype == "category"


@pytest.mark.parametrize("text", ["7,1,4\n007,2,3\n", "007,1,4\n7,2,3\n", "+7,1,4\n7,2,3\n",
                                  "1,0042,4\n2,42,3\n", "user,item,rating\n-0,1,4\n0,2,3\n"])
def test_auto_ids_keep_zero_padded_ids_as_strings_instead_of_merging_them(tmp_path, text):
    path = tmp_path / "r.csv"
    path.write_text(text)
    frame = read_ratings(path)
    lines = [line.split(",") for line in text.splitlines() if not line.startswith("user")]
    assert [str(u) for u in frame["user"]] == [line[0] for line in lines]
    assert [str(i) for i in frame["item"]] == [line[1] for line in lines]


@pytest.mark.parametrize("text", ["1,10,+5\n2,20,0.5\n", "1,10,05\n2,20,3\n",
                                  "1\t10\t4\t0978300760\n2\t20\t3\t978300761\n"])
def test_auto_ids_stay_integers_when_only_other_fields_look_padded(tmp_path, text):
    path = tmp_path / ("r.tsv" if "\t" in text else "r.csv")
    path.write_text(text)
    frame = read_ratings(path)
    assert frame["user"].dtype == np.int32 and list(frame["item"]) == [10, 20]


# --- every bad value named with its line; long lines cut (issue 20, D11, D13, D14, D15, D21) ---

@pytest.mark.parametrize("sep", [",", "\t", "::", ";", " "])
@pytest.mark.parametrize("rating, problem", [
    ("1e39", "rating '1e39' is not a finite number in float32"),            # beyond float32
    ("3.4028236e38", "rating '3.4028236e38' is not a finite number in float32"),
    ("1e308", "rating '1e308' is not a finite number in float32"),
    ("\uff15", "rating '\uff15' is not a finite number"),                     # a fullwidth 5
    ("1e-320", "rating '1e-320' is too small for float32"),                  # would read as 0
    ("1e-46", "rating '1e-46' is too small for float32"),
])
def test_a_rating_float32_cannot_hold_is_an_error_naming_its_line(tmp_path, sep, rating, problem):
    path = tmp_path / "r.txt"
    path.write_text(f"1{sep}10{sep}4\n2{sep}20{sep}{rating}\n3{sep}30{sep}5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"r.txt, line 2: {problem}")):
        read_ratings(path)


#: ratings written non-zero that float64 itself reads as 0 (below its 4.9e-324), and one
#: float64 holds but float32 does not
UNDERFLOWING = ["1e-400", "-1e-400", "0." + "0" * 400 + "1", "1e-320"]


@pytest.mark.parametrize("compression", ["", ".gz", ".bz2", ".xz", ".zip"])
@pytest.mark.parametrize("layout", ["csv", "tsv-header", "dat-str-ids"])
@pytest.mark.parametrize("rating", UNDERFLOWING, ids=["1e-400", "-1e-400", "0.0..01", "1e-320"])
def test_a_rating_below_float64s_smallest_is_an_error_in_every_file_form(
        tmp_path, compression, layout, rating):
    # issue 20, D21: float64 reads '1e-400' as 0, so comparing float64 with float32 zeros
    # missed it in every file (the plain one too); now every reader path names the line
    sep, header, user = {"csv": (",", "", "1"), "tsv-header": ("\t", "user\titem\trating\n", "1"),
                         "dat-str-ids": ("::", "", "u1")}[layout]
    text = f"{header}{user}{sep}10{sep}4\n2{sep}20{sep}{rating}\n3{sep}30{sep}5\n".encode()
    path = tmp_path / f"r.txt{compression}"
    path.write_bytes(fuzz_harness._compress(text, compression))
    line = 3 if header else 2
    with pytest.raises(ValueError, match=re.escape(f"{path.name}, line {line}: rating ")
                       + ".* too small for float32.* it would read as 0"):
        read_ratings(path)


@pytest.mark.parametrize("reader", ["stream", "usecols", "pairs", "skip", "parquet-text"])
def test_a_rating_below_float64s_smallest_is_refused_by_every_reader(tmp_path, reader):
    text = "1,10,4\n2,20,1e-400\n3,30,5\n"
    path = tmp_path / "r.csv"
    path.write_text(text)
    if reader == "skip":   # a bad line like any other: skipped, and said so
        with pytest.warns(mfcore.errors.BadLinesWarning, match="line 2: rating '1e-400'"):
            assert list(read_ratings(path, on_bad_lines="skip").rating) == [4, 5]
        return
    match = "1e-400.* too small for float32"
    if reader == "parquet-text":   # a text column of a Parquet file
        pytest.importorskip("pyarrow")
        path = tmp_path / "r.parquet"
        pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["4", "1e-400"]}).to_parquet(path)
        match += ".*row 1"
    with pytest.raises(ValueError, match=match):
        if reader == "stream":
            read_ratings(io.BufferedReader(io.BytesIO(text.encode())))
        elif reader == "usecols":
            read_ratings(path, usecols=[0, 1, 2])
        else:
            read_pairs(path) if reader == "pairs" else read_ratings(path)


@pytest.mark.parametrize("zero", ["0", "-0.0", "0e-400", "0.000", ".0e5"])
def test_ratings_written_as_zero_are_read_as_zero(tmp_path, zero):
    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress(f"1,10,4\n2,20,{zero}\n".encode()))
    assert list(read_ratings(path).rating) == [4.0, 0.0]


@pytest.mark.parametrize("compression", ["", ".gz", ".zip"])
@pytest.mark.parametrize("ids", ["str", "auto", "int"])
def test_an_id_over_the_length_bound_is_an_error_naming_line_and_length(tmp_path, compression,
                                                                         ids):
    # string ids up to a line's 1 MiB were accepted; an id has at most MAX_ID_LENGTH characters
    from mfcore.ids import MAX_ID_LENGTH
    long = "7" * (MAX_ID_LENGTH + 1)   # (numeric: ids="int" must say so too)
    text = f"user,item,rating\n1,10,4\n2,{long},3\n".encode()
    path = tmp_path / f"r.csv{compression}"
    path.write_bytes(fuzz_harness._compress(text, compression))
    with pytest.raises(ValueError, match=f"{path.name}, line 3: item id of 4,097 characters "
                                         r"\(an id may have at most 4,096\)") as info:
        read_ratings(path, ids=ids)
    assert len(str(info.value)) < 300
    path.write_bytes(fuzz_harness._compress(text.replace(b"7", b"", 1), compression))
    if ids == "str":   # the bound itself is read, and a longer id's line can be skipped
        assert read_ratings(path, ids=ids).item.cat.categories.str.len().max() == MAX_ID_LENGTH
        path.write_bytes(fuzz_harness._compress(text, compression))
        with pytest.warns(mfcore.errors.BadLinesWarning, match="line 3: item id of 4,097"):
            assert list(read_ratings(path, ids=ids, on_bad_lines="skip").user) == ["1"]


def test_string_ids_padded_with_spaces_are_kept_but_said(tmp_path):
    # issue 21 (newcomer report, 'u1, i1, 5' beside 'u1,i1,3'): ' i1' and 'i1' became two
    # items without a word; ids stay byte for byte (issue 20, D4), with a warning
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\nu1, i1, 5\nu1,i1,3\nu2,i2,4\n")
    with pytest.warns(UserWarning, match=r"r.csv: 1 item id\(s\) begin or end with a space "
                                         r"\(e.g. ' i1'\): .* ' i1' and 'i1' are two ids"):
        assert list(read_ratings(path).item) == [" i1", "i1", "i2"]
    path.write_text("1, 10, 5\n2, 20, 3\n")   # integer ids are numbers: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(read_ratings(path).item) == [10, 20]


def test_a_parquet_id_over_the_length_bound_is_an_error_naming_its_row(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": ["a", "b" * 5000], "item": [1, 2], "rating": [4.0, 3.0]}).to_parquet(path)
    with pytest.raises(ValueError, match="user id at row 1 has 5,000 characters"):
        read_ratings(path)


def test_tiny_ratings_that_float32_holds_are_read():
    assert float(np.float32(1e-45)) > 0   # the smallest subnormal rounds up, not to 0


@pytest.mark.parametrize("line, problem", [
    ("\uff12,20,3", "user id '\uff12' is not an integer"),     # Python's int() takes it
    ("2,\u0664\u0662,3", "item id '\u0664\u0662' is not an integer"),   # Arabic-Indic digits
])
def test_unicode_digits_in_integer_ids_are_an_error_naming_the_line(tmp_path, line, problem):
    path = tmp_path / "r.csv"
    path.write_text(f"1,10,4\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"r.csv, line 2: {problem}")):
        read_ratings(path, ids="int")


def test_a_parquet_rating_below_float32s_smallest_is_an_error(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [4.0, 1e-320]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"1e-320.* too small for float32.*row 1"):
        read_ratings(path)


def test_a_megabyte_field_is_cut_in_the_message(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("1\t1\t3\n2\t2\t" + "5" * 500_000 + "x\n")
    with pytest.raises(ValueError, match="r.tsv, line 2: rating") as info:
        read_ratings(path)
    assert len(str(info.value)) < 400 and "500,001 characters" in str(info.value)


@pytest.mark.parametrize("first", [True, False])
def test_a_line_over_the_limit_is_an_error_naming_it_without_copying_it(tmp_path, first):
    path = tmp_path / "r.tsv"
    giant = b"2\t2\t" + b"5" * (io_module.MAX_LINE + 10) + b"\n"
    path.write_bytes((giant + b"1\t1\t3\n") if first else (b"1\t1\t3\n" + giant + b"3\t3\t4\n"))
    outcome, peak = peak_allocation(lambda: read_ratings(path))
    assert isinstance(outcome, ValueError), outcome
    assert f"line {1 if first else 2}: a line of over 1,048,576 characters" in str(outcome)
    assert len(str(outcome)) < 400


def test_a_long_line_leaves_the_fast_parser_at_once(tmp_path, monkeypatch):
    # the compiled parser gathered a line without a newline block by block, re-joining and
    # re-searching all of it each time: quadratic in the line's length
    monkeypatch.setattr(io_module, "_FAST_BLOCK", 1 << 10)
    joined = []
    real = io_module._parse_fast

    def counting(open_stream, *args):
        def opened():
            stream = open_stream()
            read = stream.read

            def read_block(size=-1):
                joined.append(size)
                return read(size)
            stream.read = read_block
            return stream
        return real(opened, *args)
    monkeypatch.setattr(io_module, "_parse_fast", counting)
    path = tmp_path / "r.tsv"
    path.write_bytes(b"1\t1\t3\n2\t2\t" + b"5" * (1 << 19) + b"x\n")
    with pytest.raises(ValueError, match="line 2: rating"):
        read_ratings(path)
    assert len(joined) < 10   # (a KB block at a time: over a thousand reads before)


def test_a_first_line_over_64_kb_is_sniffed_whole(tmp_path):
    # the sniffer read only 64 KB and saw one field: "the first line has 1 field(s)"; the
    # whole line seen, its 100 KB id is named as too long (ids have at most 4,096 characters)
    path = tmp_path / "r.tsv"
    path.write_text("u" * 100_000 + "\t1\t3\nv\t2\t4\n")
    with pytest.raises(ValueError, match="r.tsv, line 1: user id of 100,000 characters"):
        read_ratings(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_named_and_read_with_their_encoding(tmp_path, encoding):
    path = tmp_path / "r.csv"
    text = "user,item,rating\n1,10,5\n2,20,4\n"
    family = encoding[:6]
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data   # (the -be codec writes no mark)
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"byte-order mark.*encoding='{family}'"):
        read_ratings(path)
    frame = read_ratings(path, encoding=encoding if encoding != "utf-16-be" else "utf-16")
    assert frame.to_dict("list") == {"user": [1, 2], "item": [10, 20], "rating": [5.0, 4.0]}


def _pipe(data):
    """A readable pipe's path (/dev/fd/N) fed with ``data`` by a thread."""
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as fh:
            fh.write(data)
    threading.Thread(target=feed, daemon=True).start()
    return read_fd, f"/dev/fd/{read_fd}"


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress])
def test_a_pipe_is_read_once_and_whole(compress):
    # the reader reopened a path 3-4 times, and a pipe gives its data once: "no ratings"
    text = b"".join(b"%d\t%d\t%d\n" % (u, u % 7, u % 5 + 1) for u in range(5000))
    fd, path = _pipe(compress(text) if compress else text)
    try:
        frame = read_ratings(path)
    finally:
        os.close(fd)
    assert len(frame) == 5000 and frame["user"].tolist() == list(range(5000))


def test_a_binary_stream_is_read_and_named_in_errors():
    stream = io.BytesIO(b"1,10,4\n2,20,x\n")
    stream.name = "<stdin>"
    with pytest.raises(ValueError, match="<stdin>, line 2: rating 'x'"):
        read_ratings(stream)
    assert len(read_ratings(io.BytesIO(b"1,10,4\n2,20,3\n"))) == 2


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_device_is_refused_at_its_first_nul():
    outcome, peak = peak_allocation(lambda: read_ratings("/dev/zero"))
    assert isinstance(outcome, ValueError) and "a NUL byte at byte 0" in str(outcome)
    assert peak < 8 << 20


def test_header_names_from_the_file_are_cut_in_messages(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item," + "x" * 5000 + "\n1,2,3\n")
    with pytest.raises(ValueError, match="does not know: 'xxx") as info:
        read_ratings(path)
    assert len(str(info.value)) < 800 and "5,000 characters" in str(info.value)


def test_a_misspelt_optional_header_name_warns_with_a_suggestion(tmp_path):
    # 'timestmap' was skipped as an unknown extra column without a word: the timestamps lost
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating,timestmap\n1,2,3,100\n2,3,4,200\n")
    with pytest.warns(UserWarning, match="'timestmap' is not a name .* did you mean 'timestamp'"):
        frame = read_ratings(path)
    assert list(frame.columns) == ["user", "item", "rating"]
    frame = read_ratings(path, columns=["user", "item", "rating", "timestamp"])
    assert list(frame["timestamp"]) == [100, 200]
    path.write_text("userId,movieId,rating,timestamp,tag,times\n1,2,3,100,a,b\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # known extras, or ones like a column present: silent
        read_ratings(path)


def test_an_unknown_required_header_name_suggests_the_known_one(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("usr,item,rating\n1,2,3\n")
    with pytest.raises(ValueError, match=r"does not know: 'usr' \(did you mean 'user'\?\)"):
        read_ratings(path)


@pytest.mark.parametrize("text", ["0,0,1\n0,1e3,1\n", "1,1,4\n2,1.0,3\n", "5,7,4\n5.0,8,3\n",
                                  "1\t10\t4\n1\t1.5e1\t3\n"])
def test_an_id_with_a_fraction_or_exponent_is_never_silently_an_integer(tmp_path, text):
    # pandas' integer parsing read '1e3' as 1000 and '1.0' as 1 (fuzz finding): "auto" keeps
    # such ids as text, byte for byte; ids="int" names the line
    path = tmp_path / "r.txt"
    path.write_text(text)
    sep = "\t" if "\t" in text else ","
    lines = [line.split(sep) for line in text.splitlines()]
    frame = read_ratings(path)
    assert [str(u) for u in frame["user"]] == [line[0] for line in lines]
    assert [str(i) for i in frame["item"]] == [line[1] for line in lines]
    with pytest.raises(ValueError, match=r"line 2: (user|item) id '[0-9.e]+' is not an integer"):
        read_ratings(path, ids="int")
