"""IdMap: lookups agree with a plain dict on both paths (dense table and binary search)."""
import pickle

import numpy as np
import pytest

from mfcore.ids import IdMap

I64 = np.iinfo(np.int64)


def dict_lookup(idmap, queries):
    index = {int(v): j for j, v in enumerate(idmap.ids)}
    return np.array([index.get(int(q), -1) for q in queries], dtype=np.int32)


@pytest.mark.parametrize("low, high, dense", [
    (0, 3_000, True),                    # MovieLens-like: small ids, some gaps
    (-500, 500, True),                   # negative ids
    (0, 10**12, False),                  # ids too spread out for a table
    (I64.max - 2_000, I64.max, True),    # a table at the top of the int64 range
])
def test_lookup_matches_a_dict(low, high, dense):
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(low, high, 800, endpoint=True))
    idmap, rows = IdMap.fit(rng.permutation(np.repeat(ids, 2)))
    queries = np.concatenate([ids, rng.integers(low, high, 500, endpoint=True),
                              [I64.min, I64.max, low - 1, 0, -1]]).astype(np.int64)
    got = idmap.lookup(queries)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, dict_lookup(idmap, queries))
    assert (idmap._table is not None and idmap._table is not False) == dense


def test_many_queries_into_a_large_sparse_map_match_a_dict():
    rng = np.random.default_rng(11)               # big enough for the sorted-queries search
    ids = np.unique(rng.integers(-10**15, 10**15, 70_000))
    idmap = IdMap(rng.permutation(ids))
    queries = np.concatenate([rng.choice(ids, 60_000), rng.integers(-10**15, 10**15, 10_000)])
    np.testing.assert_array_equal(idmap.lookup(queries), dict_lookup(idmap, queries))


def test_extend_keeps_old_indices_and_refreshes_the_table():
    idmap = IdMap(np.array([10, 30, 20]))
    assert list(idmap.lookup(np.array([20, 40]))) == [2, -1]
    assert list(idmap.extend(np.array([40, 10, 5]))) == [4, 0, 3]   # new ids appended, sorted
    np.testing.assert_array_equal(idmap.lookup(np.array([5, 10, 20, 30, 40, 50])),
                                  [3, 0, 2, 1, 4, -1])


def test_pickle_leaves_the_cache_out():
    idmap = IdMap(np.arange(100_000))
    idmap.lookup(np.array([5]))
    copy = pickle.loads(pickle.dumps(idmap))
    assert copy._table is None and copy == idmap
    assert list(copy.lookup(np.array([99_999, 100_000]))) == [99_999, -1]
    old = IdMap.__new__(IdMap)                      # as unpickled from before the cache
    old.__setstate__({k: v for k, v in idmap.__getstate__().items() if k != "_table"})
    assert list(old.lookup(np.array([7]))) == [7]


def test_string_ids_use_the_search_path():
    idmap, rows = IdMap.fit(np.array(["b", "a", "c", "a"]))
    assert list(rows) == [1, 0, 2, 0]
    assert list(idmap.lookup(np.array(["c", "zz", "a"]))) == [2, -1, 0]


# --- a bound on an id's length (issue 20's fuzzing: 1 MiB ids were accepted) --------------

def test_an_id_over_the_bound_is_an_error_naming_its_position_and_length():
    import mfcore
    from mfcore.ids import MAX_ID_LENGTH
    ok, long = "a" * MAX_ID_LENGTH, "b" * (MAX_ID_LENGTH + 1)
    model = mfcore.Model(k=2, epochs=1).fit(["u", ok], ["x", "y"], [1.0, 2.0])
    assert model.user_map_.lookup([ok])[0] >= 0   # the bound itself is an id
    for call in (lambda: mfcore.Model(k=2, epochs=1).fit(["u", long], ["x", "y"], [1.0, 2.0]),
                 lambda: model.predict(["u", long], ["x", "x"]),
                 lambda: model.recommend(long),
                 lambda: model.fold_in(long, ["x"], [3.0])):
        with pytest.raises(ValueError, match=r"users: the id at position \d has 4,097 "
                                             r"characters; an id may have at most 4,096") as info:
            call()
        assert len(str(info.value)) < 300


def test_an_id_map_read_from_a_file_takes_any_length():
    # files written before the bound hold whatever ids they were given: they still load
    assert len(IdMap(["x" * 10_000, "y"])) == 2
