"""ALS with side features: bit-identical without them, the exact feature step against a
NumPy least-squares reference, thread-count independence, cold start (predict,
recommend, fold-in), save/load, bad input and the command line."""
import io

import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore import cli
from mfcore.errors import UnknownIdWarning
from mfcore.estimators.als import MAX_DENSE_GROUP, FeatureStep
from test_bayes_features import (DATA, ITEMS, USERS, check_bad_tables, check_cold_recommendations,
                                 cold_split)

ARRAYS = ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
          "user_feature_weights_", "item_feature_weights_")


def fit(data=DATA, users=USERS, items=ITEMS, **kw):
    params = dict(k=3, iterations=8, seed=1, n_threads=1)
    params.update(kw)
    return mfcore.ALS(**params).fit(*data, user_features=users, item_features=items)


def rmse(pred, r):
    return float(np.sqrt(np.mean((pred - r) ** 2)))


def test_without_features_the_fit_is_bit_identical():
    plain = mfcore.ALS(k=3, iterations=4, seed=1).fit(*DATA)
    none = mfcore.ALS(k=3, iterations=4, seed=1).fit(*DATA, user_features=None,
                                                      item_features=None)
    for name in ARRAYS[:4]:
        assert np.array_equal(getattr(plain, name), getattr(none, name))
    assert none.user_feature_weights_ is None and none.user_feature_encoding_ is None
    # a refit without features forgets those of an earlier fit
    model = fit(k=3, iterations=4)
    model.fit(*DATA)
    for name in ARRAYS[:4]:
        assert np.array_equal(getattr(plain, name), getattr(model, name))
    assert model.item_feature_weights_ is None and model.item_feature_encoding_ is None


def test_bit_identical_for_1_2_and_3_threads():
    fits = [fit(n_threads=n, validation_fraction=0.1) for n in (1, 2, 3)]
    for other in fits[1:]:
        for name in ARRAYS:
            assert np.array_equal(getattr(fits[0], name), getattr(other, name)), name


def test_the_cg_solver_centres_its_rows_on_the_feature_terms_too():
    # enough CG steps from a warm start reach the exact solve: the same model
    exact = fit(dtype="float64", iterations=6)
    cg = fit(dtype="float64", iterations=6, solver="cg", cg_steps=30)
    for name in ARRAYS:
        np.testing.assert_allclose(getattr(cg, name), getattr(exact, name), atol=1e-6,
                                   err_msg=name)
    # the kernel's exact path (cg_steps 0) with a centre is the row solve's
    from mfcore._kernels import ials, rowsolve
    rng = np.random.default_rng(0)
    Q, c = rng.normal(size=(9, 3)), rng.normal(size=9)
    indptr, cols = np.array([0, 4, 4, 9]), rng.integers(0, 9, 9).astype(np.int32)
    r, m, a = rng.normal(size=9), rng.normal(size=(3, 3)), rng.normal(size=3)
    want = np.zeros((3, 3)), np.zeros(3)
    rowsolve.solve_rows(indptr, cols, r + 0.5, Q, c, 0.5, 0.3, 0.2, 0.0, 1.0, True, *want, 1,
                        0.4, m, a)
    got = np.zeros((3, 3)), np.zeros(3)
    ials.solve_rows(indptr, cols, np.ones(9), r, Q, c, 0.0, 0.3, 0.2,
                    np.diff(indptr).astype(np.float64), True, 0, *got, np.zeros(0), 1, 0.4, m, a)
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)
    assert np.array_equal(got[0][1], m[1])   # a row without ratings takes its centre
    fits = [fit(solver="cg", n_threads=n, iterations=3) for n in (1, 3)]
    for name in ARRAYS:
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name


def reference_step(effective, theta, triplets, group_ptr, row_penalty, penalty, relative):
    """Each group's weights by a dense weighted least-squares solve per column, the groups
    in order, from the definition (FeatureStep's docstring)."""
    n, width = effective.shape
    X = np.zeros((n, len(theta)))
    np.add.at(X, (triplets[0], triplets[1]), triplets[2])
    theta = theta.copy()
    for a, b in zip(group_ptr[:-1], group_ptr[1:]):
        rest = effective - X @ theta + X[:, a:b] @ theta[a:b]
        for c in range(width):
            w = row_penalty[:, min(c, 1)]
            gram = X[:, a:b].T @ (w[:, None] * X[:, a:b])
            gram += np.diag(relative * np.diag(gram)) + penalty[min(c, 1)] * np.eye(b - a)
            theta[a:b, c] = np.linalg.solve(gram, X[:, a:b].T @ (w * rest[:, c]))
    return theta


def test_the_feature_step_solves_each_group_exactly():
    # a categorical column (diagonal system), a numeric one, a multi-valued one (dense)
    table = pd.DataFrame({"g": list("abcab") * 8, "x": np.linspace(-1, 2, 40),
                          "tags": ["p|q", "q", "r|p|s", "s", "q|r"] * 8}, index=range(40))
    enc = mfcore.features.FeatureEncoding.fit(table, "user_features")
    triplets, _ = enc.encode(table, np.arange(40), "user_features")
    rng = np.random.default_rng(0)
    effective = rng.normal(size=(40, 4))
    row_penalty = rng.uniform(0.5, 3.0, (40, 2))
    penalty = np.array([0.7, 0.3])
    theta = rng.normal(size=(enc.n_features, 4))
    want = reference_step(effective, theta, triplets, enc.group_ptr, row_penalty, penalty, 0.6)
    step = FeatureStep(triplets, enc.group_ptr, 40, row_penalty, penalty, 0.6,
                       ["g", "x", "tags"])
    assert [g["disjoint"] for g in step.groups] == [True, True, False]
    step.step(effective, theta, step.terms(theta))
    np.testing.assert_allclose(theta, want, rtol=1e-10, atol=1e-12)


def test_the_objective_never_increases():
    for count_weighted in (True, False):
        model = fit(iterations=12, count_weighted=count_weighted, reg_features=0.5)
        loss = [h["train_loss"] for h in model.history_]
        assert max(np.diff(loss)) <= 1e-9 * loss[0], loss


def test_cold_users_and_items_are_predicted_from_their_features():
    train, test = cold_split()
    model = fit(data=train, k=4, iterations=15)
    with pytest.warns(UnknownIdWarning, match="unknown user id"):
        fallback = model.predict(test[0], test[1])
    with pytest.warns(UnknownIdWarning, match=r"the \d+ pair\(s\) of 24 unknown user id\(s\) "
                                              "with a feature row predicted from their features"):
        cold = model.predict(test[0], test[1], user_features=USERS)
    assert rmse(cold, test[2]) < 0.8 * rmse(fallback, test[2])
    # the prediction is mu + b_i + (its feature terms) . (1, q_i), the terms sum x theta
    enc = model.user_feature_encoding_
    (rows, feats, vals), _ = enc.encode(USERS, np.array([test[0][0]]), "user_features")
    terms = (vals[:, None] * model.user_feature_weights_[feats]).sum(axis=0)
    i = model.item_map_.lookup(np.array([test[1][0]]))[0]
    expected = (model.global_mean_ + model.item_bias_[i] + terms[0]
                + terms[1:] @ model.item_factors_[i])
    np.testing.assert_allclose(cold[0], np.clip(expected, *model.rating_range_), rtol=1e-5)
    # a cold item (unseen in training) is predicted from its tags
    items = ITEMS.rename(index={100: 999})
    with pytest.warns(UnknownIdWarning, match="unknown item id"):
        a = model.predict(train[0][:5], np.full(5, 999), item_features=items)
    with pytest.warns(UnknownIdWarning):
        b = model.predict(train[0][:5], np.full(5, 999))
    assert not np.allclose(a, b)


def test_recommend_ranks_cold_users_from_their_features():
    train, test = cold_split()
    check_cold_recommendations(fit(data=train, k=4), train, test)


def test_save_and_load_keep_the_cold_start_predictions(tmp_path):
    train, test = cold_split()
    model = fit(data=train)
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    for name in ARRAYS:
        assert np.array_equal(getattr(model, name), getattr(loaded, name))
    assert loaded.user_feature_encoding_.names() == model.user_feature_encoding_.names()
    with pytest.warns(UnknownIdWarning):
        want = model.predict(test[0], test[1], user_features=USERS, item_features=ITEMS)
    with pytest.warns(UnknownIdWarning):
        got = loaded.predict(test[0], test[1], user_features=USERS, item_features=ITEMS)
    assert np.array_equal(want, got)


def test_fold_in_solves_what_the_features_leave_of_the_ratings():
    train, test = cold_split()
    model = fit(data=train, k=3)
    user = test[0][0]
    mine = test[0] == user
    items, ratings = test[1][mine][:3], test[2][mine][:3]
    folded = fit(data=train, k=3).fold_in(user, items, ratings, user_features=USERS)
    # the exact row solve, its penalties centred on the user's feature terms
    enc = model.user_feature_encoding_
    (_, feats, vals), _ = enc.encode(USERS, np.array([user]), "user_features")
    centre = (vals[:, None] * model.user_feature_weights_[feats]).sum(axis=0)
    j = model.item_map_.lookup(items)
    A = np.hstack([np.ones((3, 1)), model.item_factors_[j].astype(np.float64)])
    y = ratings - model.global_mean_ - model.item_bias_[j]
    reg, reg_bias, base, count_weight, shrink = model._fold_in_penalty(0.0)
    scale = base + count_weight * 3
    D = np.diag([reg_bias * scale + shrink] + [reg * scale] * 3)
    x = np.linalg.solve(A.T @ A + D, A.T @ y + D @ centre)
    row = folded.user_map_.lookup(np.array([user]))[0]
    np.testing.assert_allclose(folded.user_bias_[row], x[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(folded.user_factors_[row], x[1:], rtol=1e-5, atol=1e-6)
    # a user without a feature row is folded in as without features
    a = fit(data=train, k=3).fold_in(user, items, ratings,
                                     user_features=USERS.drop(index=user))
    b = fit(data=train, k=3).fold_in(user, items, ratings)
    assert np.array_equal(a.user_factors_, b.user_factors_)


def test_bad_input_gets_clear_errors():
    model = check_bad_tables(lambda **kw: fit(iterations=2, **kw))
    with pytest.raises(NotImplementedError, match="partial_fit does not continue"):
        model.partial_fit(*DATA)
    with pytest.raises(NotImplementedError, match="warm_start does not continue"):
        model.set_params(warm_start=True).fit(*DATA, user_features=USERS)
    with pytest.raises(mfcore.InvalidParameterError, match="reg_features"):
        fit(reg_features=0.0)
    wide = pd.DataFrame({"tags": ["|".join(f"t{j}" for j in range(x, x + 2))
                                  for x in range(MAX_DENSE_GROUP + 1)]})
    users = np.arange(len(wide))
    with pytest.raises(ValueError, match=r"column 'tags' has 4098 features"):
        mfcore.ALS(k=2, iterations=1).fit(users, users % 7, np.ones(len(users)) + users % 3,
                                          user_features=wide)


def test_the_cli_trains_als_with_feature_files(tmp_path, capsys):
    train, test = cold_split()
    pd.DataFrame({"user": train[0], "item": train[1], "rating": train[2]}).to_csv(
        tmp_path / "train.csv", index=False)
    pd.DataFrame({"user": test[0], "item": test[1]}).to_csv(tmp_path / "pairs.csv", index=False)
    USERS.rename_axis("user_id").reset_index().to_csv(tmp_path / "users.csv", index=False)
    ITEMS.rename_axis("item_id").reset_index().to_csv(tmp_path / "items.csv", index=False)
    assert cli.main(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.mfz"), "-q",
                     "--algorithm", "als", "--user-features", str(tmp_path / "users.csv"),
                     "--item-features", str(tmp_path / "items.csv"), "--k", "3",
                     "--iterations", "8", "--seed", "1"]) == 0
    model = mfcore.load(tmp_path / "m.mfz")
    assert model.user_feature_encoding_.names()[:3] == ["group=g0", "group=g1", "group=g2"]
    assert model.item_feature_weights_.shape == (4, 4)
    capsys.readouterr()
    assert cli.main(["predict", str(tmp_path / "m.mfz"), str(tmp_path / "pairs.csv"),
                     "--user-features", str(tmp_path / "users.csv")]) == 0
    printed = capsys.readouterr()
    assert "predicted from their features" in printed.err
    out = pd.read_csv(io.StringIO(printed.out))
    assert model.item_map_.kind == "str"   # (the reader reads the file's ids as text)
    with pytest.warns(UnknownIdWarning):
        expected = model.predict(test[0], test[1].astype(str), user_features=USERS)
    np.testing.assert_allclose(out["prediction"], expected, atol=6e-5)
