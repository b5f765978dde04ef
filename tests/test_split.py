"""Splits: parts are disjoint, their union is the input, seeds reproduce, each kind does what it says."""
import numpy as np
import pytest

from mfcore import split

pd = pytest.importorskip("pandas")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


def ratings_frame(n=200, n_users=15, seed=0, index_offset=1000):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user": rng.integers(1, n_users + 1, n).astype(np.int32),
        "item": rng.integers(1, 50, n).astype(np.int32),
        "rating": rng.integers(1, 6, n).astype(np.float32),
        "timestamp": rng.integers(0, 30, n),          # many ties on purpose
    }, index=np.arange(index_offset, index_offset + n))


def assert_partition(data, parts):
    labels = np.concatenate([p.index.to_numpy() for p in parts])
    assert len(labels) == len(data) == len(set(labels))              # no loss, no duplicate
    assert set(labels) == set(data.index)
    for p in parts:
        pd.testing.assert_frame_equal(p, data.loc[p.index])            # rows unchanged
        assert p.index.is_monotonic_increasing                         # input order kept


SPLITS = [
    lambda d, s: split.train_test_split(d, 0.25, seed=s),
    lambda d, s: split.train_test_split(d, 7, seed=s),
    lambda d, s: split.train_val_test_split(d, 0.1, 0.1, seed=s),
    lambda d, s: split.per_user_split(d, 0.3, seed=s),
    lambda d, s: split.per_user_split(d, 2, seed=s),
    lambda d, s: split.temporal_split(d, test_size=0.2),
    lambda d, s: split.temporal_split(d, cutoff=20),
    lambda d, s: split.temporal_split(d, last_n=2),
]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 300), n_users=st.integers(1, 30), seed=st.integers(0, 2**32 - 1),
       which=st.integers(0, len(SPLITS) - 1))
def test_every_split_partitions_the_input(n, n_users, seed, which):
    data = ratings_frame(n, n_users, seed)
    try:
        parts = SPLITS[which](data, seed)
    except ValueError as exc:  # e.g. a cutoff that puts everything on one side
        assert "cutoff" in str(exc)
        return
    assert_partition(data, parts)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(10, 200), k=st.integers(2, 10), seed=st.integers(0, 2**32 - 1))
def test_kfold_tests_each_rating_exactly_once(n, k, seed):
    data = ratings_frame(n, 5, seed)
    folds = list(split.kfold(data, k, seed=seed))
    assert len(folds) == k
    tested = np.concatenate([test.index.to_numpy() for _, test in folds])
    assert sorted(tested) == sorted(data.index)
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert_partition(data, (train, test))


def test_seeds_reproduce_and_differ():
    data = ratings_frame()
    a = split.train_val_test_split(data, seed=5, indices=True)
    b = split.train_val_test_split(data, seed=5, indices=True)
    c = split.train_val_test_split(data, seed=6, indices=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    assert [len(p) for p in a] == [160, 20, 20]


def test_per_user_split_holds_out_each_users_share():
    data = ratings_frame(600, 10)
    train, test = split.per_user_split(data, 0.25, seed=1)
    n_user = data.groupby("user").size()
    n_test = test.groupby("user").size().reindex(n_user.index, fill_value=0)
    np.testing.assert_array_equal(n_test, np.rint(0.25 * n_user))
    train, test = split.per_user_split(data, 3, seed=1)
    assert (test.groupby("user").size() == 3).all()


def test_per_user_split_keeps_min_train():
    data = pd.DataFrame({"user": [1, 1, 2, 3, 3, 3], "item": [1, 2, 1, 1, 2, 3],
                         "rating": [5.0, 4, 3, 2, 1, 5]})
    train, test = split.per_user_split(data, 2, min_train=1)
    assert sorted(train["user"].unique()) == [1, 2, 3]
    assert test.groupby("user").size().to_dict() == {1: 1, 3: 2}


def test_temporal_last_n_takes_the_latest_of_each_user():
    data = pd.DataFrame({"user": [1, 1, 1, 2, 2, 1], "item": [1, 2, 3, 1, 2, 4],
                         "rating": [1.0, 2, 3, 4, 5, 1], "timestamp": [10, 30, 20, 5, 5, 30]})
    train, test = split.temporal_split(data, last_n=2)
    # user 1: times 10, 30, 20, 30 -> the two at time 30 (rows 1 and 5); user 2: a tie, the later row
    assert list(test.index) == [1, 4, 5]
    train, test = split.temporal_split(data, test_size=2)
    assert list(test.index) == [1, 5]
    train, test = split.temporal_split(data, cutoff=20)
    assert list(test.index) == [1, 2, 5]
    assert train["timestamp"].max() < test["timestamp"].min()


@pytest.mark.parametrize("call, match", [
    (lambda d: split.train_test_split(d, 0.0), "test_size"),
    (lambda d: split.train_test_split(d, 1.5), "test_size"),
    (lambda d: split.train_test_split(d, 200), "at least one"),
    (lambda d: split.train_val_test_split(d, 0.5, 0.5), "no training data"),
    (lambda d: list(split.kfold(d, 1)), "n_splits"),
    (lambda d: split.per_user_split(d, -1), "test_size"),
    (lambda d: split.temporal_split(d), "exactly one"),
    (lambda d: split.temporal_split(d, cutoff=10, last_n=1), "exactly one"),
    (lambda d: split.temporal_split(d, cutoff=10**9), "no rating"),
    (lambda d: split.temporal_split(d.drop(columns="timestamp"), last_n=1), "timestamp"),
    (lambda d: split.train_test_split(d.iloc[:0]), "empty"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(ratings_frame())


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):
        split.train_test_split(np.zeros((10, 3)))
