"""BayesianMF with side features: the encoding of feature tables, the feature draws against
a NumPy reference, thread-count independence, cold start (predict, std, fold-in),
save/load, and bad input."""
import warnings

import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore._kernels import bayes, bayes_features
from mfcore.errors import UnknownIdWarning
from mfcore.estimators.bayes import feature_layout, feature_terms
from mfcore.features import FeatureEncoding


def planted(n_users=120, n_items=40, n=3000, seed=0):
    """Ratings whose user taste is set by a categorical feature (group), whose item taste
    by a multi-valued one (tags), plus a numeric user feature; returns the ratings and both
    tables."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n_users)
    tags = [sorted(set(rng.integers(0, 4, rng.integers(1, 3)).tolist())) for _ in range(n_items)]
    taste = np.array([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.5]])[group]
    tag_vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    kind = np.array([tag_vectors[t].mean(axis=0) for t in tags])
    age = rng.normal(40, 10, n_users)
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    r = np.clip(3 + (taste[u] * kind[i]).sum(axis=1) + 0.02 * (age[u] - 40)
                + rng.normal(0, 0.3, n), 1, 5)
    users = pd.DataFrame({"group": [f"g{g}" for g in group], "age": age},
                         index=[f"u{x}" for x in range(n_users)])
    items = pd.DataFrame({"tags": ["|".join(f"t{x}" for x in t) for t in tags]},
                         index=np.arange(n_items) + 100)
    key = np.unique(u * n_items + i, return_index=True)[1]
    return (np.array([f"u{x}" for x in u])[key], i[key] + 100, r[key]), users, items


DATA, USERS, ITEMS = planted()


def fit(n_threads=1, implicit=False, users=USERS, items=ITEMS, data=DATA, **kw):
    params = dict(k=3, n_samples=20, burn_in=10, seed=1, n_threads=n_threads, implicit=implicit)
    params.update(kw)
    return mfcore.BayesianMF(**params).fit(*data, user_features=users, item_features=items)


# --- the encoding ------------------------------------------------------------------------

def test_encoding_of_each_column_kind():
    table = pd.DataFrame({"gender": ["F", "M", None], "age": [20.0, 30.0, 40.0],
                          "genres": ["Action|Comedy", ["Drama"], "Comedy"]}, index=[7, 9, 3])
    enc = FeatureEncoding.fit(table, "user_features")
    assert enc.names() == ["gender=F", "gender=M", "age", "genres=Action", "genres=Comedy",
                           "genres=Drama"]
    assert list(enc.group_ptr) == [0, 2, 3, 6]
    (rows, feats, vals), present = enc.encode(table, np.array([3, 7, 5]), "user_features")
    assert list(present) == [True, True, False]
    got = {(int(r), int(f)): float(v) for r, f, v in zip(rows, feats, vals)}
    scale = np.std([20.0, 30.0, 40.0])
    assert got == {(0, 2): pytest.approx(10.0 / scale), (0, 4): 1.0,
                   (1, 0): 1.0, (1, 2): pytest.approx(-10.0 / scale), (1, 3): 0.5, (1, 4): 0.5}


def test_encoding_survives_save_and_counts_unseen_levels():
    enc = FeatureEncoding.fit(USERS, "user_features")
    again = FeatureEncoding.from_state(enc.to_state("user_feature"), "user_feature")
    new = pd.DataFrame({"group": ["g1", "g9", "g7"], "age": [30.0, 50.0, 45.0]},
                       index=["a", "b", "c"])
    with pytest.warns(UnknownIdWarning, match=r"2 value\(s\) of levels not seen in fit"):
        first, _ = enc.encode(new, np.array(["a", "b", "c"]), "user_features")
    with pytest.warns(UnknownIdWarning):
        second, _ = again.encode(new, np.array(["a", "b", "c"]), "user_features")
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    assert list(first[1]) == [1, 3, 3, 3]  # g1, then only age for the unseen levels


def test_sparse_matrix_features():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    matrix = scipy_sparse.random(len(USERS), 6, density=0.4, random_state=0, format="csr")
    model = fit(users=(matrix, USERS.index.to_numpy()), items=None)
    assert model.user_feature_samples_.shape == (6, model.n_kept_, 4)
    with pytest.raises(ValueError, match="the matrix has 5 columns, the model was fitted with 6"):
        model.predict(["new"], [100], user_features=(matrix[:1, :5], ["new"]))


# --- the kernel --------------------------------------------------------------------------

def reference_columns(layout, theta, hyper_mean, hyper_prec, eff, shift, row_hyper, seed,
                      stream, sweep):
    """theta and the shifts after one pass, from the full conditionals written plainly."""
    theta, shift = theta.copy(), shift.copy()
    F, kk = theta.shape
    feats = np.repeat(np.arange(F), np.diff(layout["ptr"]))
    group = np.repeat(np.arange(len(layout["group_ptr"]) - 1), np.diff(layout["group_ptr"]))
    for c in range(kk):
        res = eff[:, c] - row_hyper[0, c] - shift[:, c]
        for g in range(F):
            mine = feats == g
            rows, x = layout["rows"][mine], layout["x"][mine]
            lg, mg = hyper_prec[group[g], c], hyper_mean[group[g], c]
            prec = row_hyper[1, c] * np.sum(x * x) + lg
            mean = (row_hyper[1, c] * (np.sum(x * res[rows]) + theta[g, c] * np.sum(x * x))
                    + lg * mg) / prec
            z = np.empty(1)
            bayes.draws("normal", seed, stream, sweep, c, z, first_row=g)
            value = mean + z[0] / np.sqrt(prec)
            res[rows] -= x * (value - theta[g, c])
            theta[g, c] = value
        shift[:, c] = eff[:, c] - row_hyper[0, c] - res
    return theta, shift


@pytest.mark.parametrize("k, width", [(1, None), (4, None), (6, None), (6, 4), (6, 1)])
def test_feature_sweep_matches_the_full_conditionals(k, width):
    """Against the NumPy reference, for tasks of all columns (the default of a small side)
    and of a few (a large side's; the numbers may not depend on the cut)."""
    rng = np.random.default_rng(k)
    n_rows, F = 9, 7
    rows = rng.integers(0, n_rows, 20)
    feats = rng.integers(0, F, 20)
    keys = np.unique(rows * F + feats)
    rows, feats = keys // F, keys % F
    layout = feature_layout(rows, feats, rng.normal(size=len(rows)), F, np.array([0, 3, 7]))
    theta = rng.normal(size=(F, k + 1))
    eff = rng.normal(size=(n_rows, k + 1))
    shift = rng.normal(size=(n_rows, k + 1))
    row_hyper = np.stack([rng.normal(size=k + 1), rng.uniform(0.5, 2, k + 1)])
    hyper = np.zeros((2, 2, k + 1))
    out_theta, bias, factors = theta.copy(), eff[:, 0].copy(), eff[:, 1:].copy()
    sb, sf, own = shift[:, 0].copy(), shift[:, 1:].copy(), np.zeros((n_rows, k))
    side = bayes_features.FeatureSide("item", layout["ptr"], layout["rows"], layout["x"],
                                      layout["group_ptr"], out_theta, hyper, bias, factors,
                                      sb, sf, own, row_hyper, 2, width=width)
    bayes_features.feature_sweep([side], 5, 2, 2)
    stream = bayes_features.STREAMS["item_feature"]
    want_theta, want_shift = reference_columns(layout, theta, hyper[:, 0], hyper[:, 1], eff,
                                               shift, row_hyper, 5, stream, 2)
    np.testing.assert_allclose(out_theta, want_theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.column_stack([sb, sf]), want_shift, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(own, factors - sf, rtol=1e-12, atol=1e-12)
    # the shifts are the rows' feature terms plus what they held besides
    np.testing.assert_allclose(np.column_stack([sb, sf]) - shift,
                               feature_terms(layout, out_theta - theta, n_rows), atol=1e-12)
    assert (hyper[:, 1] > 0).all()


def random_side(name, seed, k=5, n_rows=30, F=9, width=None, n_threads=2, n_values=80):
    """A FeatureSide of random features and state (the arrays it updates alongside)."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, n_rows, n_values) * F + rng.integers(0, F, n_values))
    layout = feature_layout(keys // F, keys % F, rng.normal(size=len(keys)), F,
                            np.array([0, 4, F]))
    arrays = [rng.normal(size=(F, k + 1)), np.zeros((2, 2, k + 1)), rng.normal(size=n_rows),
              rng.normal(size=(n_rows, k)), rng.normal(size=n_rows),
              rng.normal(size=(n_rows, k)), np.zeros((n_rows, k)),
              np.stack([rng.normal(size=k + 1), rng.uniform(0.5, 2, k + 1)])]
    side = bayes_features.FeatureSide(name, layout["ptr"], layout["rows"], layout["x"],
                                      layout["group_ptr"], *arrays, n_threads, width=width)
    return side, arrays


def test_feature_sweep_is_the_same_for_any_cut_threads_and_sides_together():
    """Bit for bit: each side alone on one thread with all columns a task, against both
    sides in one call, cut into tasks of 1, 2 or 4 columns, on 1 to 3 threads."""
    want = []
    for name, seed in (("user", 1), ("item", 2)):
        side, arrays = random_side(name, seed)
        bayes_features.feature_sweep([side], 7, 3, 1)
        want += arrays
    for width, threads in ((1, 3), (2, 2), (4, 1)):
        (users, a), (items, b) = (random_side(n, s, width=width, n_threads=threads)
                                  for n, s in (("user", 1), ("item", 2)))
        bayes_features.feature_sweep([items, users], 7, 3, threads)
        for got, expected in zip(a + b, want):
            assert np.array_equal(got, expected)
    # a side of over 2^20 values x columns: column blocks on several threads
    large = dict(k=40, n_rows=3000, F=20, n_values=40000, n_threads=3)
    runs = [random_side("item", 3, **large) for _ in range(2)]
    assert runs[0][0].width == 4 and random_side("item", 3)[0].width == 6
    for (side, _), threads in zip(runs, (1, 3)):
        bayes_features.feature_sweep([side], 7, 3, threads)
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_feature_sweep_refuses_bad_sides():
    users, _ = random_side("user", 1)
    with pytest.raises(ValueError, match="at most one FeatureSide per side"):
        bayes_features.feature_sweep([users, users], 7, 3, 1)
    with pytest.raises(ValueError, match="made for fewer than 3 threads"):
        bayes_features.feature_sweep([users], 7, 3, 3)
    with pytest.raises(ValueError, match="width must be 1 to 6 columns, got 7"):
        random_side("user", 1, width=7)
    with pytest.raises(TypeError):
        bayes_features.feature_sweep(["user"], 7, 3, 1)


def test_check_features_names_the_problem():
    ok = dict(ptr=np.array([0, 2], np.int64), rows=np.array([0, 1], np.int32),
              x=np.array([1.0, 2.0]), group_ptr=np.array([0, 1], np.int64))
    bayes_features.check_features(*ok.values(), 2)
    with pytest.raises(ValueError, match="names row 1, not one of 0..0"):
        bayes_features.check_features(*ok.values(), 1)
    with pytest.raises(ValueError, match="not finite"):
        bayes_features.check_features(ok["ptr"], ok["rows"], np.array([1.0, np.nan]),
                                      ok["group_ptr"], 2)


# --- fits ------------------------------------------------------------------------------

@pytest.mark.parametrize("implicit", [False, True])
def test_bit_identical_for_any_thread_count(implicit):
    models = [fit(n_threads=t, implicit=implicit) for t in (1, 2, 3)]
    for other in models[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                     "user_feature_samples_", "item_feature_samples_", "item_hyper_samples_",
                     "alpha_samples_"):
            assert np.array_equal(getattr(models[0], name), getattr(other, name)), name


def test_a_fit_without_features_is_unchanged_by_the_feature_code():
    plain = mfcore.BayesianMF(k=3, n_samples=20, burn_in=10, seed=1, n_threads=2).fit(*DATA)
    none = mfcore.BayesianMF(k=3, n_samples=20, burn_in=10, seed=1, n_threads=2).fit(
        *DATA, user_features=None, item_features=None)
    assert plain.user_feature_encoding_ is None and plain.item_hyper_samples_ is None
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(plain, name), getattr(none, name))


def cold_split():
    users, items, r = DATA
    cold = np.isin(users, [f"u{x}" for x in range(0, 120, 5)])
    return (users[~cold], items[~cold], r[~cold]), (users[cold], items[cold], r[cold])


def test_cold_start_users_are_predicted_from_their_features():
    train, test = cold_split()
    model = fit(data=train, n_samples=40)
    with pytest.warns(UnknownIdWarning, match="unknown user id"):
        fallback = model.predict(test[0], test[1])
    with pytest.warns(UnknownIdWarning, match=r"of 24 unknown user id\(s\) with a feature row "
                                              "predicted from their features"):
        mean, std = model.predict(test[0], test[1], user_features=USERS, return_std=True)
    rmse = lambda p: np.sqrt(np.mean((p - test[2]) ** 2))  # noqa: E731
    assert rmse(mean) < 0.75 * rmse(fallback)
    _, known_std = model.predict(*train[:2], return_std=True)
    assert std.mean() > known_std.mean()
    # one id at a time gives the same numbers
    with pytest.warns(UnknownIdWarning):
        one = model.predict(test[0][0], test[1][0], user_features=USERS)
    assert one == pytest.approx(mean[0], rel=1e-6)


def test_cold_items_and_save_load_exact(tmp_path):
    users, items, r = DATA
    cold = items >= 135
    model = fit(data=(users[~cold], items[~cold], r[~cold]))
    with pytest.warns(UnknownIdWarning):
        before = model.predict(users[cold], items[cold], item_features=ITEMS, return_std=True)
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    with pytest.warns(UnknownIdWarning):
        after = loaded.predict(users[cold], items[cold], item_features=ITEMS, return_std=True)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert loaded.item_feature_encoding_.names() == model.item_feature_encoding_.names()


def test_fold_in_combines_features_and_ratings():
    train, test = cold_split()
    model = fit(data=train, n_samples=40)
    first = pd.DataFrame({"u": test[0], "i": test[1], "r": test[2]}).groupby("u").head(2)
    rest = ~pd.Series(range(len(test[0]))).isin(first.index).to_numpy()
    with_features = fit(data=train, n_samples=40).fold_in(first.u, first.i, first.r,
                                                           user_features=USERS)
    without = model.fold_in(first.u, first.i, first.r)
    rmse = lambda m: np.sqrt(np.mean((m.predict(test[0][rest], test[1][rest])  # noqa: E731
                                      - test[2][rest]) ** 2))
    assert rmse(with_features) < rmse(without)


# --- bad input ---------------------------------------------------------------------------

def check_bad_tables(fit):
    """What every estimator with side features refuses, naming the row and column (``fit``:
    fits it with ``users=``/``items=`` tables); returns a model fitted without item
    features (shared with ALS's tests)."""
    dup = pd.concat([USERS, USERS.iloc[[3]]])
    with pytest.raises(ValueError, match=r"id 'u3' has two rows \(rows 3 and 120\)"):
        fit(users=dup)
    for value in (np.inf, np.nan):
        bad = USERS.copy()
        bad.loc["u7", "age"] = value
        with pytest.raises(ValueError, match=rf"column 'age' is {value} for id 'u7' \(row 7\)"):
            fit(users=bad)
    with pytest.raises(TypeError, match="DataFrame indexed by id or a"):
        fit(users=[1, 2, 3])
    model = fit(items=None)
    with pytest.raises(ValueError, match="fitted without item features"):
        model.predict(["u1"], [999], item_features=ITEMS)
    with pytest.raises(ValueError, match=r"missing \['age'\], unexpected \['height'\]"):
        model.predict(["new"], [100], user_features=USERS.rename(columns={"age": "height"}))
    nan = USERS.copy()
    nan.loc["u2", "age"] = np.nan
    with pytest.raises(ValueError, match=r"column 'age' is nan for id 'new'"):
        model.predict(["new"], [100], user_features=nan.rename(index={"u2": "new"}))
    return model


def test_bad_feature_tables_get_clear_errors():
    check_bad_tables(fit)
    with pytest.raises(ValueError, match="fitted without user features"):
        mfcore.SGD(k=2, epochs=1).fit(*DATA).fold_in(["x"], [100], [3.0],
                                                     user_features=USERS)


@pytest.mark.slow
def test_a_categorical_column_with_a_million_levels():
    n = 1_000_000
    table = pd.DataFrame({"zip": [f"z{x}" for x in range(n)]}, index=np.arange(n))
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 2000, 20000), rng.integers(0, 50, 20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mfcore.BayesianMF(k=2, n_samples=2, burn_in=1, seed=0).fit(
            u, i, rng.integers(1, 6, 20000).astype(float), user_features=table)
    # memory: levels x (k + 1) per kept sample, nothing of levels x rows
    assert model.user_feature_samples_.shape == (n, 2, 3)
    with pytest.warns(UnknownIdWarning):
        assert np.isfinite(model.predict([n - 1], [0], user_features=table.iloc[-1:])).all()


def test_the_cli_trains_and_predicts_with_feature_files(tmp_path, capsys):
    from mfcore import cli
    users, items, r = DATA
    train, test = cold_split()
    pd.DataFrame({"user": train[0], "item": train[1], "rating": train[2]}).to_csv(
        tmp_path / "train.csv", index=False)
    pd.DataFrame({"user": test[0], "item": test[1]}).to_csv(tmp_path / "pairs.csv", index=False)
    USERS.rename_axis("user_id").reset_index().to_csv(tmp_path / "users.csv", index=False)
    assert cli.main(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.mfz"), "-q",
                     "--algorithm", "bayes", "--user-features", str(tmp_path / "users.csv"),
                     "--k", "3", "--n-samples", "20", "--burn-in", "10", "--seed", "1"]) == 0
    model = mfcore.load(tmp_path / "m.mfz")
    assert model.user_feature_encoding_.names()[:3] == ["group=g0", "group=g1", "group=g2"]
    capsys.readouterr()
    assert cli.main(["predict", str(tmp_path / "m.mfz"), str(tmp_path / "pairs.csv"),
                     "--user-features", str(tmp_path / "users.csv")]) == 0
    printed = capsys.readouterr()
    assert "predicted from their features" in printed.err
    out = pd.read_csv(__import__("io").StringIO(printed.out))
    items = test[1].astype(str) if model.item_map_.ids.dtype.kind in "UO" else test[1]
    with pytest.warns(UnknownIdWarning):
        expected = model.predict(test[0], items, user_features=USERS)
    np.testing.assert_allclose(out["prediction"], expected, atol=6e-5)
    user = str(test[0][0])
    assert cli.main(["recommend", str(tmp_path / "m.mfz"), user, "-n", "3", "--rank-by",
                     "prediction", "--user-features", str(tmp_path / "users.csv")]) == 0
    listed = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    want, _ = model.recommend(user, n=3, rank_by="prediction", user_features=USERS)
    assert listed["item"].astype(str).tolist() == [str(x) for x in want]
    with pytest.raises(SystemExit):
        cli.main(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "x.mfz"),
                  "--algorithm", "sgd", "--user-features", str(tmp_path / "users.csv")])


def check_cold_recommendations(model, train, test):
    """``recommend(..., user_features=)`` of held-out users ranks as ``predict`` with the
    features scores, and leaves the model unchanged (shared with ALS's tests)."""
    cold_users = np.unique(test[0])[:3]
    catalogue = model.item_map_.ids
    items, scores = model.recommend(cold_users, n=5, rank_by="prediction", user_features=USERS)
    for row, user in enumerate(cold_users):
        with pytest.warns(UnknownIdWarning):
            pred = model.predict(user, catalogue, clip=False, user_features=USERS)
        best = np.argsort(-pred, kind="stable")[:5]
        assert items[row].tolist() == catalogue[best].tolist()
        np.testing.assert_allclose(scores[row], pred[best], rtol=1e-5)
    # users of different groups get different lists; without features, the same popular list
    with pytest.warns(UnknownIdWarning):
        plain, _ = model.recommend(cold_users, n=5, rank_by="prediction")
    assert (plain == plain[0]).all() and not (items == items[0]).all()
    assert len(model.user_map_) == len(np.unique(train[0]))   # the model itself is unchanged


def test_recommend_ranks_cold_users_from_their_features():
    train, test = cold_split()
    check_cold_recommendations(fit(data=train, n_samples=40), train, test)
