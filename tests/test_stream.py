"""Streamed fits: ``RatingChunks`` reads a rating file a chunk at a time, and SGD and ALS lay
the ratings out from it (``mfcore.data.prepare_chunks``) into the model a fit from the
arrays gives, bit for bit."""
import gzip
import warnings

import numpy as np
import pytest

import mfcore
from mfcore import DuplicateRatingsWarning, RatingChunks, cli, read_ratings
from mfcore.data import StreamedRatings, prepare_chunks

FITTED = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "seen_indptr_",
          "seen_items_", "item_counts_", "global_mean_", "rating_scale_", "rating_range_")


def _write(path, users, items, ratings, sep="\t", header=None):
    with open(path, "w") as fh:
        if header:
            fh.write(header + "\n")
        for u, i, r in zip(users, items, ratings):
            fh.write(f"{u}{sep}{i}{sep}{r:g}\n")
    return str(path)


@pytest.fixture(scope="module")
def rating_file(tmp_path_factory):
    data = mfcore.datasets.synthetic(n_users=120, n_items=90, n_ratings=3000, seed=1)
    path = tmp_path_factory.mktemp("stream") / "ratings.tsv"
    return _write(path, data.user, data.item, data.rating)


def _same_fit(a, b):
    for name in FITTED:
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y), name
    assert a.user_map_ == b.user_map_ and a.item_map_ == b.item_map_
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]


def _chunks_of(source):
    parts = list(source)
    return [np.concatenate([p[n] for p in parts]) for n in range(3)], [len(p[2]) for p in parts]


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 10**6])
def test_chunks_are_the_rows_read_ratings_reads(rating_file, chunk_size):
    frame = read_ratings(rating_file)
    (users, items, ratings), sizes = _chunks_of(RatingChunks(rating_file, chunk_size=chunk_size))
    assert max(sizes) == min(chunk_size, len(frame)) and sum(sizes) == len(frame)
    assert np.array_equal(users, frame.user) and np.array_equal(items, frame.item)
    assert np.array_equal(ratings, frame.rating) and ratings.dtype == np.float32


@pytest.mark.parametrize("form", ["movielens", "csv_header", "gzip", "late_exponent", "str_ids"])
def test_chunks_of_other_forms(tmp_path, form):
    users, items = np.arange(50) % 7, np.arange(50) % 11
    ratings = (np.arange(50) % 5 + 1).astype(float)
    path = tmp_path / "r.txt"
    if form == "movielens":
        with open(path, "w") as fh:
            fh.writelines(f"{u}::{i}::{r:g}::{978300760 + n}\n"
                          for n, (u, i, r) in enumerate(zip(users, items, ratings)))
    elif form == "csv_header":
        _write(path, users, items, ratings, ",", "userId,movieId,rating")
    elif form == "gzip":
        plain = _write(tmp_path / "plain.tsv", users, items, ratings)
        path = tmp_path / "r.tsv.gz"
        with open(plain, "rb") as src, gzip.open(path, "wb") as out:
            out.write(src.read())
    elif form == "late_exponent":  # the compiled parser stops at line 41; pandas reads on
        _write(path, users, items, ratings)
        text = path.read_text().splitlines()
        text[40] = text[40].rsplit("\t", 1)[0] + "\t3e0"
        path.write_text("\n".join(text) + "\n")
        ratings[40] = 3.0
    else:
        _write(path, [f"u{u}" for u in users], [f"i{i}" for i in items], ratings)
    frame = read_ratings(path)
    (got_u, got_i, got_r), sizes = _chunks_of(RatingChunks(path, chunk_size=8))
    assert sizes == [8] * 6 + [2]
    assert np.array_equal(got_u.astype(str), np.asarray(frame.user).astype(str))
    assert np.array_equal(got_i.astype(str), np.asarray(frame.item).astype(str))
    assert np.array_equal(got_r, frame.rating) and np.array_equal(got_r, ratings)


ESTIMATORS = {"sgd": lambda n: mfcore.SGD(k=6, epochs=3, n_threads=n, seed=3),
              "als": lambda n: mfcore.ALS(k=6, iterations=3, n_threads=n, seed=3),
              "als_cg": lambda n: mfcore.ALS(k=6, iterations=3, solver="cg", n_threads=n),
              "als64": lambda n: mfcore.ALS(k=6, iterations=2, dtype="float64", n_threads=n)}


@pytest.mark.parametrize("estimator, n_threads, chunk_size", [
    (estimator, n_threads, chunk_size) for estimator in ESTIMATORS for n_threads in (1, 2)
    for chunk_size in ((3, 500, 10**6) if estimator in ("sgd", "als") else (500,))])
def test_a_streamed_fit_is_the_fit_from_arrays(rating_file, estimator, n_threads, chunk_size):
    model = ESTIMATORS[estimator](n_threads)
    expected = type(model)(**model.get_params()).fit(read_ratings(rating_file))
    _same_fit(model.fit(RatingChunks(rating_file, chunk_size=chunk_size)), expected)


def test_string_ids_stream_to_the_same_fit(tmp_path):
    data = mfcore.datasets.synthetic(n_users=40, n_items=30, n_ratings=600, seed=2)
    path = _write(tmp_path / "s.csv", [f"user-{u}" for u in data.user],
                  [f"item {i:03d}" for i in data.item], data.rating, ",")
    for estimator in (mfcore.SGD(k=4, epochs=2), mfcore.ALS(k=4, iterations=2)):
        expected = type(estimator)(**estimator.get_params()).fit(read_ratings(path))
        _same_fit(estimator.fit(RatingChunks(path, chunk_size=50)), expected)


@pytest.fixture
def duplicated_file(tmp_path):
    users = [1, 2, 1, 3, 2, 1, 3, 4] * 4
    items = [10, 10, 20, 30, 10, 10, 10, 20] * 4
    ratings = [1, 2, 3, 4, 5, 4, 3, 2] * 4
    return _write(tmp_path / "dup.tsv", users, items, ratings)


@pytest.mark.parametrize("estimator", [mfcore.SGD, mfcore.ALS])
def test_duplicates_are_merged_as_from_arrays(duplicated_file, estimator):
    for policy in ("mean", "last", "keep"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            streamed = estimator(k=3, duplicates=policy).set_params(
                **{estimator.epochs_param: 2}).fit(RatingChunks(duplicated_file, chunk_size=5))
        with warnings.catch_warnings(record=True) as caught_arrays:
            warnings.simplefilter("always")
            expected = estimator(k=3, duplicates=policy).set_params(
                **{estimator.epochs_param: 2}).fit(read_ratings(duplicated_file))
        _same_fit(streamed, expected)
        assert ([str(w.message) for w in caught if w.category is DuplicateRatingsWarning]
                == [str(w.message) for w in caught_arrays
                    if w.category is DuplicateRatingsWarning])
        assert (policy == "keep") != any(w.category is DuplicateRatingsWarning for w in caught)
        assert streamed.n_ratings_ == (32 if policy == "keep" else 6)
    with pytest.raises(ValueError, match="26 duplicate .user, item. ratings, e.g. user 1"):
        estimator(duplicates="error").fit(RatingChunks(duplicated_file))


def test_keep_streams_and_its_seen_items_are_distinct(duplicated_file):
    data = prepare_chunks(RatingChunks(duplicated_file, chunk_size=3), np.float32, "keep")
    assert isinstance(data, StreamedRatings) and len(data) == 32
    (indptr, items), repeats = data.build_seen()
    assert indptr.tolist() == [0, 2, 3, 5, 6] and items.tolist() == [0, 1, 0, 0, 2, 1]
    assert repeats == data.repeats == 26


def test_bad_lines_raise_as_read_ratings_does(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("1\t2\t3\n" * 40 + "1\t2\tfive\n" + "2\t3\t4\n" * 5)
    with pytest.raises(ValueError) as expected:
        read_ratings(path)
    assert "line 41" in str(expected.value)
    with pytest.raises(ValueError) as got:
        mfcore.SGD(k=2, epochs=1).fit(RatingChunks(path, chunk_size=4))
    assert str(got.value) == str(expected.value)
    with pytest.warns(mfcore.BadLinesWarning, match="skipped 1 bad line"):
        model = mfcore.SGD(k=2, epochs=1, duplicates="keep").fit(
            RatingChunks(path, chunk_size=4, on_bad_lines="skip"))
    assert model.n_ratings_ == 45


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    for name, error in (("empty.tsv", ValueError), ("missing.tsv", FileNotFoundError)):
        with pytest.raises(error) as expected:
            read_ratings(tmp_path / name)
        with pytest.raises(error) as got:
            mfcore.SGD().fit(RatingChunks(tmp_path / name))
        assert str(got.value) == str(expected.value)


def test_what_a_streamed_fit_refuses(rating_file):
    chunks = RatingChunks(rating_file)
    with pytest.raises(TypeError, match="RatingChunks source alone"):
        mfcore.SGD().fit(chunks, [1], [2])
    with pytest.raises(NotImplementedError, match="pass validation="):
        mfcore.SGD(k=2, epochs=1, validation_fraction=0.1).fit(chunks)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        RatingChunks(rating_file, chunk_size=0)
    with pytest.raises(TypeError, match="unknown option"):
        RatingChunks(rating_file, delimiter=",")
    model = mfcore.SGD(k=2, epochs=1, warm_start=True).fit(read_ratings(rating_file))
    with pytest.raises(NotImplementedError, match="warm_start does not continue"):
        model.fit(chunks)


def test_validation_data_score_a_streamed_fit(rating_file):
    frame = read_ratings(rating_file)
    held = frame.iloc[:300]
    expected = mfcore.SGD(k=4, epochs=3).fit(frame, validation=held)
    streamed = mfcore.SGD(k=4, epochs=3).fit(RatingChunks(rating_file), validation=held)
    _same_fit(streamed, expected)
    assert [h["val_rmse"] for h in streamed.history_] == [h["val_rmse"] for h in expected.history_]


def test_an_estimator_without_streaming_reads_the_source_whole(rating_file):
    assert "streaming" not in mfcore.BayesianMF.capabilities
    model = mfcore.BayesianMF(k=2, burn_in=1, n_samples=1, seed=0)
    expected = mfcore.BayesianMF(**model.get_params()).fit(read_ratings(rating_file))
    model.fit(RatingChunks(rating_file, chunk_size=100))
    assert np.array_equal(model.user_factors_, expected.user_factors_)


class _Changing:
    """A chunk source whose second pass differs from its first (a file written meanwhile)."""
    streams_ratings = True

    def __init__(self):
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        n = 20 if self.passes == 1 else 21
        yield np.arange(n) % 4, np.arange(n) % 5, np.ones(n) + np.arange(n) % 3


def test_a_source_that_changes_between_passes_is_an_error():
    with pytest.raises(ValueError, match="source changed during the fit"):
        mfcore.SGD(k=2, epochs=1).fit(_Changing())


def test_ratings_of_many_values_are_laid_out_as_they_are(tmp_path):
    """Up to 256 distinct ratings ALS's streamed layout holds as byte codes; more, as floats:
    both give the fit from arrays."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 40, 1500), rng.integers(0, 30, 1500)
    for ratings, coded in ((rng.integers(1, 6, 1500) / 2, True),
                           (np.round(rng.uniform(1, 5, 1500), 3), False)):
        path = _write(tmp_path / f"r{coded}.tsv", users, items, ratings)
        data = prepare_chunks(RatingChunks(path), np.float32, "keep")
        assert (data.rating_values is not None) == coded
        if coded:
            assert data.rating_values.tolist() == sorted(set(ratings.tolist()))
        for dtype in ("float32", "float64"):
            als = mfcore.ALS(k=3, iterations=2, duplicates="keep", dtype=dtype)
            expected = mfcore.ALS(**als.get_params()).fit(read_ratings(path))
            _same_fit(als.fit(RatingChunks(path, chunk_size=100)), expected)


def test_the_train_command_streams_its_file(rating_file, tmp_path, capsys):
    code = cli.main(["train", rating_file, "-o", str(tmp_path / "m.mfz"), "--algorithm", "als",
                     "--k", "4", "--iterations", "2"])
    out, err = capsys.readouterr()
    assert code == 0 and "read a chunk at a time" in err and "trained on 3,000 ratings" in out
    expected = mfcore.ALS(k=4, iterations=2).fit(read_ratings(rating_file))
    assert np.array_equal(mfcore.load(tmp_path / "m.mfz").user_factors_, expected.user_factors_)


def test_a_callback_of_a_streamed_fit_is_told_why_seen_items_cannot_be_excluded(rating_file):
    # the seen items are built after the last epoch: the message says so, not "older mfcore"
    errors = []

    def callback(model, epoch, record):
        with pytest.raises(ValueError, match="RatingChunks source") as caught:
            model.recommend([model.user_map_.ids[0]], n=3)
        errors.append(str(caught.value))
        model.recommend([model.user_map_.ids[0]], n=3, exclude_seen=False)
        return True

    fitted = mfcore.SGD(k=4, epochs=3, seed=0).fit(RatingChunks(rating_file), callback=callback)
    assert len(errors) == 1 and "exclude_seen=False" in errors[0]
    assert fitted.seen_items_ is not None  # built once training ended
