"""Data in and out, the pandas way: every entry point takes three arrays or one table of
ratings (``mfcore.data.rating_arrays``), and pandas in gives pandas out."""
import warnings

import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore import split


def ratings_frame(n_users=30, n_items=40, density=0.3, seed=0, names=("user", "item", "rating")):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = np.clip(np.round(3 + rng.normal(0, 1, len(u))), 1, 5)
    frame = pd.DataFrame({names[0]: u + 1, names[1]: i + 100, names[2]: r,
                          "timestamp": rng.integers(0, 10**6, len(u))})
    frame.index = frame.index + 1000  # a non-default index: results must follow it
    return frame


def small(**kw):
    return mfcore.Model(k=4, epochs=3, seed=0, **kw)


def test_fit_takes_a_dataframe_as_it_takes_three_arrays():
    df = ratings_frame()
    by_arrays = small().fit(df["user"], df["item"], df["rating"])
    by_frame = small().fit(df)
    np.testing.assert_array_equal(by_arrays.user_factors_, by_frame.user_factors_)
    for estimator in (mfcore.ALS(k=3, iterations=2), mfcore.BayesianMF(k=3, n_samples=3,
                                                                       burn_in=2)):
        a = type(estimator)(**estimator.get_params()).fit(df["user"], df["item"], df["rating"])
        b = estimator.fit(df)
        np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_movielens_csv_column_aliases_are_found_without_columns():
    df = ratings_frame(names=("userId", "movieId", "rating"))
    plain = ratings_frame()
    got = small().fit(df)
    want = small().fit(plain)
    np.testing.assert_array_equal(got.user_factors_, want.user_factors_)
    assert got.evaluate(df)["rmse"] == want.evaluate(plain)["rmse"]


def test_columns_names_a_frames_own_columns_as_dict_or_in_order():
    df = ratings_frame(names=("cust", "sku", "stars"))
    want = small().fit(ratings_frame())
    by_dict = small().fit(df, columns={"user": "cust", "item": "sku", "rating": "stars"})
    by_order = small().fit(df, columns=["cust", "sku", "stars"])
    np.testing.assert_array_equal(by_dict.user_factors_, want.user_factors_)
    np.testing.assert_array_equal(by_order.user_factors_, want.user_factors_)


def test_a_frame_without_a_rating_column_is_a_clear_error():
    df = ratings_frame(names=("cust", "sku", "stars"))
    with pytest.raises(ValueError, match="no user column .*columns="):
        small().fit(df)
    with pytest.raises(ValueError, match="no column 'nope'"):
        small().fit(df, columns={"user": "nope", "item": "sku", "rating": "stars"})
    both = ratings_frame().assign(userId=1)  # 'user' wins over its alias
    small().fit(both)
    twice = ratings_frame(names=("userId", "movieId", "rating")).assign(uid=1)
    with pytest.raises(ValueError, match="could each be the user column"):
        small().fit(twice)


def test_a_table_and_arrays_together_or_columns_with_arrays_are_refused():
    df = ratings_frame()
    with pytest.raises(TypeError, match="alone"):
        small().fit(df, df["item"], df["rating"])
    with pytest.raises(ValueError, match="columns= names the columns of a table"):
        small().fit(df["user"], df["item"], df["rating"], columns=["user", "item", "rating"])


def test_predict_on_a_frame_returns_a_series_on_its_index():
    df = ratings_frame()
    model = small().fit(df)
    pred = model.predict(df)
    assert isinstance(pred, pd.Series) and pred.name == "prediction"
    assert pred.index.equals(df.index)
    np.testing.assert_array_equal(pred.to_numpy(), model.predict(df["user"], df["item"]))
    pairs = df[["item", "user"]].iloc[::-1]  # column order does not matter; the index follows
    assert model.predict(pairs).index.equals(pairs.index)
    # arrays in, arrays out (as before)
    assert isinstance(model.predict(df["user"].to_numpy(), df["item"].to_numpy()), np.ndarray)


def test_bayesian_predict_with_std_on_a_frame_returns_two_series():
    df = ratings_frame()
    model = mfcore.BayesianMF(k=3, n_samples=4, burn_in=2).fit(df)
    mean, std = model.predict(df, return_std=True)
    assert mean.name == "prediction" and std.name == "std"
    assert mean.index.equals(df.index) and std.index.equals(df.index)
    want_mean, want_std = model.predict(df["user"], df["item"], return_std=True)
    np.testing.assert_array_equal(std.to_numpy(), want_std)


def test_evaluate_fold_in_and_validation_take_frames():
    df = ratings_frame()
    train, test = split.train_test_split(df, 0.2, seed=1)
    model = small(validation_fraction=None).fit(train, validation=test)
    want = small().fit(train["user"], train["item"], train["rating"],
                       validation=(test["user"], test["item"], test["rating"]))
    np.testing.assert_array_equal(model.user_factors_, want.user_factors_)
    assert model.evaluate(test) == want.evaluate(test["user"], test["item"], test["rating"])
    new = pd.DataFrame({"user": [999] * 3, "item": [100, 101, 102], "rating": [5.0, 4.0, 1.0]})
    model.fold_in(new)
    want.fold_in(999, [100, 101, 102], [5.0, 4.0, 1.0])
    np.testing.assert_array_equal(model.user_factors_, want.user_factors_)


def test_search_and_cross_validate_take_frames_with_aliases():
    df = ratings_frame(names=("userId", "movieId", "rating"))
    plain = ratings_frame()
    grid = {"k": [2, 3]}
    got = mfcore.search(df, grid, base=small(), seed=0)
    want = mfcore.search(plain["user"], plain["item"], plain["rating"], grid, base=small(),
                         seed=0)
    assert got.results_frame()["val_rmse"].tolist() == want.results_frame()["val_rmse"].tolist()
    cv = mfcore.cross_validate(small(), df, cv=3)
    cv_plain = mfcore.cross_validate(small(), plain, cv=3)
    np.testing.assert_array_equal(cv["test_rmse"], cv_plain["test_rmse"])
    triple = mfcore.cross_validate(small(), (plain["user"], plain["item"], plain["rating"]), cv=3)
    np.testing.assert_array_equal(triple["test_rmse"], cv_plain["test_rmse"])


def test_every_split_takes_aliased_frames_triples_and_columns():
    plain = ratings_frame()
    aliased = ratings_frame(names=("userId", "movieId", "rating"))
    odd = ratings_frame(names=("cust", "sku", "stars")).rename(columns={"timestamp": "when"})
    odd_columns = {"user": "cust", "item": "sku", "rating": "stars", "timestamp": "when"}
    calls = [(split.train_test_split, {}), (split.train_val_test_split, {}),
             (split.per_user_split, {}), (split.temporal_split, {"last_n": 1}),
             (lambda d, **kw: next(split.kfold(d, 3, **kw)), {})]
    for fn, kw in calls:
        want = fn(plain, **kw, indices=True)
        for a, b in zip(fn(aliased, **kw, indices=True), want):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(fn(odd, **kw, indices=True, columns=odd_columns), want):
            np.testing.assert_array_equal(a, b)
    triple = (plain["user"].to_numpy(), plain["item"].to_numpy(), plain["rating"].to_numpy())
    train, test = split.train_test_split(triple, 0.2, seed=0)
    want_train, _ = split.train_test_split(plain, 0.2, seed=0)
    assert list(train.columns) == ["user", "item", "rating"]
    np.testing.assert_array_equal(train["item"], want_train["item"])
    with pytest.raises(TypeError, match="table of ratings"):
        split.train_test_split(np.zeros((5, 3)))


def test_recommend_as_frame_is_a_long_table_without_padding():
    df = ratings_frame(n_users=5, n_items=6, density=0.6)
    model = small().fit(df)
    users = [1, 2, 3]
    top = model.recommend(users, n=4, as_frame=True)
    assert list(top.columns) == ["user", "rank", "item", "score"]
    items, scores = model.recommend(users, n=4)
    for row, user in enumerate(users):
        mine = top[top["user"] == user]
        keep = ~np.isnan(scores[row])
        np.testing.assert_array_equal(mine["item"], items[row][keep])
        np.testing.assert_array_equal(mine["rank"], np.arange(1, keep.sum() + 1))
    one = model.recommend(1, n=2, as_frame=True)
    assert one["user"].tolist() == [1, 1] and one["rank"].tolist() == [1, 2]


def test_arrow_tables_and_sparse_matrices_are_tables_of_ratings():
    df = ratings_frame()
    want = small().fit(df)
    pa = pytest.importorskip("pyarrow")
    got = small().fit(pa.Table.from_pandas(df.reset_index(drop=True)))
    np.testing.assert_array_equal(got.user_factors_, want.user_factors_)
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix((df["rating"], (df["user"], df["item"])))
    got = small().fit(matrix)
    # rows and columns are the ids; same ratings, same ids: the same model
    np.testing.assert_array_equal(got.predict(df["user"], df["item"]),
                                  want.predict(df["user"], df["item"]))


def test_polars_frames_are_tables_of_ratings():
    pl = pytest.importorskip("polars")
    df = ratings_frame()
    got = small().fit(pl.from_pandas(df.reset_index(drop=True)))
    np.testing.assert_array_equal(got.user_factors_, small().fit(df).user_factors_)


def test_dask_fit_given_a_pandas_frame_says_what_to_do():
    pytest.importorskip("distributed")
    import mfcore.dask
    with pytest.raises(TypeError, match=r"estimator.fit\(ratings\).*from_pandas"):
        mfcore.dask.fit(mfcore.ALS(), ratings_frame())


def test_search_grid_naming_the_searchs_own_options_is_a_clear_error():
    df = ratings_frame()
    with warnings.catch_warnings():
        with pytest.raises(ValueError, match="validation_fraction=? is an option of the "
                           "search itself.*e.g. validation_fraction=0.1"):
            mfcore.search(df, {"validation_fraction": [0.1, 0.2]})


def test_cli_tune_grid_of_the_validation_fraction_is_a_clear_error(tmp_path, capsys):
    from mfcore.cli import main
    path = tmp_path / "r.csv"
    ratings_frame()[["user", "item", "rating"]].to_csv(path, index=False)
    with pytest.raises(SystemExit) as exit_:
        main(["tune", str(path), "--grid", "validation_fraction=0.1,0.2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--val is an option of the search itself" in err and "dict()" not in err


def test_read_ratings_skips_unknown_extra_columns_of_a_known_header(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text('userId,movieId,rating,timestamp,tag\n1,10,4.5,100,funny\n'
                    '2,10,3,101,"a, quoted"\n')
    got = mfcore.read_ratings(path)
    assert list(got.columns) == ["user", "item", "rating", "timestamp"]
    assert got["user"].tolist() == [1, 2] and got["rating"].tolist() == [4.5, 3.0]
    colons = tmp_path / "r.dat"
    colons.write_text("user::item::rating::note\n1::10::4::x\n2::11::3::y\n")
    assert mfcore.read_ratings(colons)["item"].tolist() == [10, 11]


def test_read_ratings_usecols_picks_fields_and_columns_names_them(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("cust,prod,score,comment\na,b,4,nice\nc,b,2,meh\n")
    with pytest.raises(ValueError, match="usecols="):
        mfcore.read_ratings(path)
    got = mfcore.read_ratings(path, usecols=["cust", "prod", "score"],
                              columns=["user", "item", "rating"])
    assert got["user"].astype(str).tolist() == ["a", "c"] and got["rating"].tolist() == [4, 2]
    by_position = mfcore.read_ratings(path, usecols=[0, 1, 2], columns="user,item,rating")
    assert by_position["item"].astype(str).tolist() == ["b", "b"]
    with pytest.raises(ValueError, match="usecols: no column 'nope'"):
        mfcore.read_ratings(path, usecols=["nope", "cust", "prod"])


def test_read_ratings_encoding_reads_latin1_and_the_error_says_how(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("us\xe9r1,caf\xe9,5\nu2,i2,3\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8.*encoding='latin-1'"):
        mfcore.read_ratings(path)
    got = mfcore.read_ratings(path, encoding="latin-1")
    assert got["user"].astype(str).tolist() == ["us\xe9r1", "u2"]
    with pytest.raises(ValueError, match="unknown text encoding"):
        mfcore.read_ratings(path, encoding="klingon")


def test_cli_trains_on_a_csv_with_a_tag_column(tmp_path):
    from mfcore.cli import main
    path = tmp_path / "ratings.csv"
    rows = ratings_frame().assign(tag="x")[["user", "item", "rating", "timestamp", "tag"]]
    rows.rename(columns={"user": "userId", "item": "movieId"}).to_csv(path, index=False)
    assert main(["train", str(path), "-o", str(tmp_path / "m.mfz"), "--epochs", "2"]) == 0
    assert mfcore.load(tmp_path / "m.mfz").n_ratings_ == len(rows)
