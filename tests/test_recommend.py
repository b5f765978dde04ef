"""recommend / similar_items / similar_users / fold_in against brute-force NumPy answers."""
import copy
import warnings

import numpy as np
import pytest

import mfcore
from mfcore._kernels import recommend as _recommend
from mfcore.errors import ModelFileError, NotFittedError, UnknownIdWarning
from mfcore.recommend import CHOICE_WEIGHT


def random_model(n_users=70, n_items=1037, k=5, density=0.2, dtype="float64", seed=0,
                 user_ids=None, item_ids=None):
    """A model with random parameters (no training needed) and random training pairs."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # every user rated
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True  # every item rated
    u, i = np.nonzero(mask)
    users = u if user_ids is None else np.asarray(user_ids)[u]
    items = i if item_ids is None else np.asarray(item_ids)[i]
    model = mfcore.Model(k=k, epochs=0, dtype=dtype, init_std=1.0, seed=seed)
    model.fit(users, items, rng.integers(1, 6, len(u)).astype(float))
    model.user_bias_[:] = rng.normal(0, 0.5, n_users)
    model.item_bias_[:] = rng.normal(0, 0.5, n_items)
    return model, mask


def brute_force(model, mask, n, exclude_seen=True, candidates=None, rank_by="choice"):
    """Rows and scores of the top n by a full sort (ties: lower item row first), by the
    prediction or by the choice model (prediction + 1.5 sigma log(1 + item count))."""
    S = (model.global_mean_ + model.user_bias_.astype(np.float64)[:, None]
         + model.item_bias_.astype(np.float64)[None, :]
         + model.user_factors_.astype(np.float64) @ model.item_factors_.astype(np.float64).T)
    if rank_by == "choice":
        S += CHOICE_WEIGHT * model.rating_scale_ * np.log1p(mask.sum(axis=0))[None, :]
    allowed = np.ones_like(S, dtype=bool)
    if exclude_seen:
        allowed &= ~mask
    if candidates is not None:
        cand = np.zeros(S.shape[1], dtype=bool)
        cand[candidates] = True
        allowed &= cand[None, :]
    rows, scores = [], []
    for s, ok in zip(S, allowed):
        idx = np.flatnonzero(ok)
        order = idx[np.lexsort((idx, -s[idx]))][:n]
        rows.append(order)
        scores.append(s[order])
    return rows, scores


@pytest.mark.parametrize("rank_by", [None, "prediction", "choice"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_equals_brute_force_ranking(dtype, rank_by):
    model, mask = random_model(dtype=dtype)
    items, scores = model.recommend(np.arange(70), n=12, rank_by=rank_by)
    assert items.shape == scores.shape == (70, 12)
    want_rows, want_scores = brute_force(model, mask, 12, rank_by=rank_by or "choice")
    tol = 1e-9 if dtype == "float64" else 1e-4
    for u in range(70):
        np.testing.assert_allclose(scores[u], want_scores[u], rtol=0, atol=tol)
        if dtype == "float64":
            np.testing.assert_array_equal(items[u], want_rows[u])
        assert (np.diff(scores[u]) <= 0).all()


def test_seen_items_never_recommended_and_unseen_are_when_asked():
    model, mask = random_model()
    items, _ = model.recommend(np.arange(70), n=50)
    for u in range(70):
        assert not mask[u, items[u]].any()
    items_all, _ = model.recommend(np.arange(70), n=50, exclude_seen=False)
    want_rows, _ = brute_force(model, mask, 50, exclude_seen=False)
    for u in range(70):
        np.testing.assert_array_equal(items_all[u], want_rows[u])


def test_scores_are_unclipped_predictions_or_the_choice_score():
    model, _ = random_model()
    items, scores = model.recommend(5, n=7, rank_by="prediction")
    np.testing.assert_allclose(scores, model.predict([5] * 7, items, clip=False), atol=1e-9)
    items, scores = model.recommend(5, n=7)
    term = CHOICE_WEIGHT * model.rating_scale_ * np.log1p(model.item_counts_[items])
    np.testing.assert_allclose(scores, model.predict([5] * 7, items, clip=False) + term,
                               atol=1e-9)


def test_rank_by_is_checked_and_needs_item_counts():
    model, _ = random_model(n_users=6, n_items=10, k=2)
    with pytest.raises(ValueError, match="rank_by must be one of .*'popular'"):
        model.recommend(0, rank_by="popular")
    model.item_counts_ = None  # a file from before the counts were kept
    with pytest.raises(ValueError, match="rank_by='choice' needs the training rating counts"):
        model.recommend(0, rank_by="choice")
    items, scores = model.recommend(0, n=3)  # the default falls back to the prediction
    np.testing.assert_allclose(scores, model.predict([0] * 3, items, clip=False), atol=1e-9)


def test_batch_equals_one_by_one_and_threads_agree():
    model, _ = random_model(dtype="float32")
    batch_items, batch_scores = model.recommend(list(range(70)), n=9)
    for u in (0, 3, 4, 63, 64, 69):
        items, scores = model.recommend(u, n=9)
        np.testing.assert_array_equal(items, batch_items[u])
        np.testing.assert_array_equal(scores, batch_scores[u])
    one = model.set_params(n_threads=1).recommend(list(range(70)), n=9)
    two = model.set_params(n_threads=2).recommend(list(range(70)), n=9)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_simd_and_portable_paths_rank_alike(dtype):
    model, _ = random_model(dtype=dtype, k=37)
    results, before = {}, mfcore.simd.current()
    try:
        for path in mfcore.simd.supported():
            mfcore.simd.select(path)
            assert mfcore.simd.current() == path
            results[path] = model.recommend(np.arange(70), n=10)
    finally:
        mfcore.simd.select(before)
    assert "baseline" in results
    for _items, scores in results.values():
        np.testing.assert_allclose(scores, results["baseline"][1], rtol=1e-5)


def test_ties_rank_by_item_row():
    model, _ = random_model(n_users=4, n_items=30, k=3)
    model.item_factors_[:] = model.item_factors_[0]
    model.item_bias_[:] = 0.25
    items, scores = model.recommend(0, n=30, exclude_seen=False, rank_by="prediction")
    np.testing.assert_array_equal(items, np.arange(30))
    assert np.ptp(scores) == 0


def test_candidate_items_restrict_the_ranking():
    model, mask = random_model()
    cand = [5, 900, 17, 17, 42, 1000, 3]
    items, scores = model.recommend(np.arange(70), n=4, items=cand, exclude_seen=True)
    want_rows, want_scores = brute_force(model, mask, 4, candidates=sorted(set(cand)))
    for u in range(70):
        got = items[u][~np.isnan(scores[u])]
        np.testing.assert_array_equal(got, want_rows[u])
    with pytest.raises(KeyError, match="unknown"):
        model.recommend(0, items=[5, 123456])


def test_fewer_candidates_than_n_single_and_batch():
    model, mask = random_model(n_users=6, n_items=10, k=2, density=0.7)
    u = int(np.argmax(mask.sum(1)))
    left = int((~mask[u]).sum())
    items, scores = model.recommend(u, n=10)
    assert len(items) == len(scores) == left
    batch_items, batch_scores = model.recommend(np.arange(6), n=10)
    assert batch_items.shape == (6, 10)
    for v in range(6):
        pad = np.isnan(batch_scores[v])
        assert pad.sum() == mask[v].sum()
        assert (batch_items[v][pad] == -1).all()
        assert not pad[:10 - mask[v].sum()].any()  # padding only at the end
    # string ids pad with ""
    smodel, smask = random_model(n_users=6, n_items=10, k=2, density=0.7,
                                 user_ids=[f"u{j}" for j in range(6)],
                                 item_ids=[f"i{j}" for j in range(10)])
    s_items, s_scores = smodel.recommend([f"u{j}" for j in range(6)], n=10)
    assert s_items.dtype.kind == "U"
    assert (s_items[np.isnan(s_scores)] == "").all()
    assert not (s_items[~np.isnan(s_scores)] == "").any()


def test_user_who_saw_everything_gets_nothing():
    model, mask = random_model(n_users=3, n_items=5, k=2, density=1.0)
    items, scores = model.recommend(1, n=3)
    assert len(items) == 0 and len(scores) == 0
    assert np.isnan(model.recommend([1, 2], n=3)[1]).all()


@pytest.mark.parametrize("rank_by", ["prediction", "choice"])
def test_an_empty_candidate_list_gives_empty_lists(rank_by):
    model, _ = random_model(n_users=4, n_items=8, k=2)
    items, scores = model.recommend(1, n=3, items=[], rank_by=rank_by)
    assert len(items) == len(scores) == 0
    items, scores = model.recommend([1, 2], n=3, items=[], rank_by=rank_by)
    assert items.shape == scores.shape == (2, 0)   # (n is capped at the candidates: none)


def test_unknown_user_fallback_is_the_most_rated_items_or_error():
    model, mask = random_model()
    counts = mask.sum(axis=0)
    assert np.array_equal(model.item_counts_, counts)
    with pytest.warns(UnknownIdWarning, match="most-rated"):
        items, scores = model.recommend(10_000, n=5)
    # most rated first, ties by the larger bias
    expected = np.lexsort((-model.item_bias_, -counts))[:5]
    np.testing.assert_array_equal(items, expected)
    assert counts[items[0]] == counts.max() and (np.diff(counts[items]) <= 0).all()
    np.testing.assert_allclose(scores, model.global_mean_ + model.item_bias_[expected]
                               + CHOICE_WEIGHT * model.rating_scale_ * np.log1p(counts[expected]))
    model.item_counts_ = None  # a model from a file that kept no counts: by bias
    with pytest.warns(UnknownIdWarning, match="largest bias"):
        by_bias, _ = model.recommend(10_000, n=5)
    np.testing.assert_array_equal(by_bias, np.argsort(-model.item_bias_, kind="stable")[:5])
    model.item_counts_ = counts.astype(np.int64)
    with pytest.warns(UnknownIdWarning):
        batch, _ = model.recommend([0, 10_000], n=5)
    np.testing.assert_array_equal(batch[1], items)
    with pytest.raises(KeyError, match="10000"):
        model.recommend([0, 10_000], unknown="error")
    with pytest.raises(ValueError, match="unknown must be"):
        model.recommend(0, unknown="nan")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_bad_n_is_rejected(bad):
    model, _ = random_model(n_users=4, n_items=8, k=2)
    with pytest.raises(ValueError, match="n must be"):
        model.recommend(0, n=bad)
    with pytest.raises(ValueError, match="n must be"):
        model.similar_items(0, n=bad)


def test_unfitted_model_raises():
    for call in (lambda m: m.recommend(1), lambda m: m.similar_items(1),
                 lambda m: m.similar_users(1), lambda m: m.fold_in(1, [1], [3.0])):
        with pytest.raises(NotFittedError):
            call(mfcore.Model())


def test_recommend_after_save_and_load(tmp_path):
    model, mask = random_model(dtype="float32")
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = mfcore.load(path)
    for a, b in zip(model.recommend(np.arange(70), n=8), loaded.recommend(np.arange(70), n=8)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.seen_items_, model.seen_items_)
    items, _ = loaded.recommend(np.arange(70), n=30)
    for u in range(70):
        assert not mask[u, items[u]].any()


@pytest.mark.parametrize("tamper, message", [
    (lambda s: s.update(seen_items=s["seen_items"][::-1].copy()), "sorted"),
    (lambda s: s.update(seen_items=s["seen_items"] + 5000), "outside"),
    (lambda s: s.update(seen_indptr=s["seen_indptr"][:-1]), "shape"),
    (lambda s: s.update(seen_items=s["seen_items"].astype(np.int64)), "int32"),
])
def test_inconsistent_seen_items_are_refused_on_load(tamper, message):
    model, _ = random_model(n_users=10, n_items=20, k=2)
    state = {name: np.asarray(v) for name, v in model._fitted_state().items()}
    tamper(state)
    with pytest.raises(ValueError, match=message):
        mfcore.Model(k=2, dtype="float64").set_params(epochs=0, init_std=1.0)._restore_fitted_state(state)


@pytest.mark.parametrize("saved_as", [np.uint16, np.int32])  # compact now, int32 in older files
def test_seen_items_load_from_either_width(saved_as):
    model, _ = random_model(n_users=10, n_items=20, k=2)
    state = {name: np.asarray(v) for name, v in model._fitted_state().items()}
    assert state["seen_items"].dtype == np.uint16          # 20 items fit in 2 bytes
    state["seen_items"] = state["seen_items"].astype(saved_as)
    restored = mfcore.Model(k=2, dtype="float64")
    restored._restore_fitted_state(state)
    assert restored.seen_items_.dtype == np.int32
    np.testing.assert_array_equal(restored.seen_items_, model.seen_items_)


def test_tampered_file_is_a_model_file_error(tmp_path):
    model, _ = random_model(n_users=10, n_items=20, k=2)
    model.seen_items_ = model.seen_items_[::-1].copy()
    model.save(tmp_path / "bad.npz")
    with pytest.raises(ModelFileError, match="sorted"):
        mfcore.load(tmp_path / "bad.npz")


def test_model_without_seen_items_says_so(tmp_path):
    model, _ = random_model(n_users=5, n_items=8, k=2)
    model.seen_indptr_ = model.seen_items_ = None  # a file written before seen items were kept
    model.save(tmp_path / "old.npz")
    model = mfcore.load(tmp_path / "old.npz")
    assert model.seen_indptr_ is None
    with pytest.raises(ValueError, match="exclude_seen=False"):
        model.recommend(0)
    assert len(model.recommend(0, n=3, exclude_seen=False)[0]) == 3


def test_partial_fit_adds_to_seen_items():
    model = mfcore.Model(k=2, epochs=1).fit([1, 1, 2], [10, 11, 10], [4.0, 3.0, 5.0])
    model.partial_fit([1, 3], [12, 11], [2.0, 4.0])
    assert set(model.recommend(1, n=10)[0]) == set()
    assert set(model.recommend(3, n=10)[0]) == {10, 12}
    assert set(model.recommend(2, n=10)[0]) == {11, 12}


# --- similar items / users ----------------------------------------------------------

def clustered_model(kind, n_clusters=4, size=10, k=8, seed=1):
    """A model whose ``kind`` factors form tight planted clusters (string ids 'x<cluster>_<j>')."""
    rng = np.random.default_rng(seed)
    n = n_clusters * size
    other = 7
    users = np.repeat(np.arange(other), n)
    items = np.tile(np.arange(n), other)
    if kind == "user":
        users, items = items, users
    ids = np.array([f"x{c}_{j}" for c in range(n_clusters) for j in range(size)])
    u_ids = ids[users] if kind == "user" else users
    i_ids = ids[items] if kind == "item" else items
    ratings = np.full(len(users), 3.0)
    ratings[0] = 4.0  # not all alike (that would warn of implicit feedback); factors set below
    model = mfcore.Model(k=k, epochs=0).fit(u_ids, i_ids, ratings)
    centers = rng.normal(0, 1, (n_clusters, k))
    rows = getattr(model, f"{kind}_map_").lookup(ids)
    F = getattr(model, f"{kind}_factors_")
    F[rows] = (np.repeat(centers, size, axis=0) * rng.uniform(0.5, 3, (n, 1))  # scale is ignored
               + rng.normal(0, 0.05, (n, k))).astype(F.dtype)
    return model, ids


@pytest.mark.parametrize("kind", ["item", "user"])
def test_similar_returns_the_planted_cluster(kind):
    model, ids = clustered_model(kind)
    similar = model.similar_items if kind == "item" else model.similar_users
    for query in ("x0_0", "x2_7", "x3_9"):
        found, sims = similar(query, n=9)
        cluster = query.split("_")[0]
        assert query not in found
        assert sorted(found) == sorted(i for i in ids if i.startswith(cluster + "_") and i != query)
        assert (sims > 0.9).all() and (sims <= 1.0 + 1e-6).all()
        assert (np.diff(sims) <= 0).all()
    batch, batch_sims = similar(["x0_0", "x2_7"], n=9)
    assert batch.shape == (2, 9)
    np.testing.assert_array_equal(batch[1], similar("x2_7", n=9)[0])


def test_similar_items_equal_brute_force_cosine():
    model, _ = random_model(dtype="float64")
    Q = model.item_factors_
    unit = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    for item in (0, 511, 1036):
        sims = unit @ unit[item]
        sims[item] = -np.inf
        want = np.argsort(-sims, kind="stable")[:6]
        got, got_sims = model.similar_items(item, n=6)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got_sims, sims[want], atol=1e-12)


def test_similar_unknown_id_and_padding():
    model, _ = random_model(n_users=3, n_items=4, k=2)
    with pytest.raises(KeyError, match="99"):
        model.similar_items(99)
    items, sims = model.similar_items([0, 1], n=5)
    assert np.isnan(sims[:, 3:]).all() and (items[:, 3:] == -1).all()
    assert len(model.similar_items(0, n=5)[0]) == 3


# --- fold-in --------------------------------------------------------------------------

def test_fold_in_predicts_held_out_ratings_about_as_well_as_a_refit(planted):
    users, items, ratings = planted
    rng = np.random.default_rng(5)
    new_users = rng.choice(np.unique(users), 40, replace=False)
    is_new = np.isin(users, new_users)
    held = is_new & (rng.random(len(users)) < 0.5)
    given = is_new & ~held
    params = dict(k=8, epochs=40, lr=0.02, reg=0.05, seed=0, n_threads=1)
    refit = mfcore.Model(**params).fit(users[~held], items[~held], ratings[~held])
    base = mfcore.Model(**params).fit(users[~is_new], items[~is_new], ratings[~is_new])
    # a strong planted signal wants little shrinkage (the default, 50, suits noisy real ratings)
    base.fold_in(users[given], items[given], ratings[given], shrinkage=10)
    rmse_refit = refit.evaluate(users[held], items[held], ratings[held])["rmse"]
    rmse_fold = base.evaluate(users[held], items[held], ratings[held])["rmse"]
    rmse_bias_only = mfcore.Model(k=1, epochs=0).fit(
        users[~held], items[~held], ratings[~held]).evaluate(
        users[held], items[held], ratings[held])["rmse"]
    assert rmse_fold < rmse_bias_only - 0.1  # the factors carry real information
    assert rmse_fold < rmse_refit * 1.05, (rmse_fold, rmse_refit)
    assert set(new_users) <= set(base.user_map_.ids)


def test_fold_in_on_movielens_matches_a_refit_and_helps_sparse_users(ml100k):
    from mfcore.io import read_ratings
    base, test = read_ratings(ml100k("u2.base")), read_ratings(ml100k("u2.test"))
    rng = np.random.default_rng(0)
    new = rng.choice(np.unique(base["user"]), 94, replace=False)
    is_new = base["user"].isin(new).to_numpy()
    old, held = base[~is_new], test[test["user"].isin(new)]
    rest = mfcore.Model(n_threads=1).fit(old["user"], old["item"], old["rating"])

    def rmse(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            return model.evaluate(held["user"], held["item"], held["rating"])["rmse"]

    refit = mfcore.Model(n_threads=1).fit(base["user"], base["item"], base["rating"])
    for part, bound in ((base[is_new], 1.01 * rmse(refit)),            # all their ratings
                        (base[is_new].groupby("user").head(5), rmse(rest))):  # five each
        model = copy.deepcopy(rest)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            model.fold_in(part["user"], part["item"], part["rating"])
        assert rmse(model) < bound, (len(part), rmse(model), bound)


def test_fold_in_solves_the_regularized_least_squares():
    model, _ = random_model(n_users=10, n_items=40, k=4)
    model.set_params(reg=0.1, reg_bias=0.02)
    items = np.array([1, 5, 9, 20, 33, 39])
    ratings = np.array([5.0, 4.0, 1.0, 3.0, 2.0, 4.5])
    for user, shrinkage in ((500, 0.0), (501, 10.0), (502, 3.5)):
        model.fold_in(user, items, ratings, shrinkage=shrinkage)
        row = model.user_map_.lookup([user])[0]
        assert row == 10 + user - 500  # appended after the fitted users
        b, p = model.user_bias_[row], model.user_factors_[row]
        Q, bi = model.item_factors_[items], model.item_bias_[items]
        e = ratings - (model.global_mean_ + b + bi + Q @ p)
        n = len(items) + shrinkage
        np.testing.assert_allclose(e.sum(), n * 0.02 * b, atol=1e-8)  # gradient in b is zero
        # gradient in p is zero (reg is per standardized rating: times the spread here)
        np.testing.assert_allclose(Q.T @ e, n * 0.1 * model.rating_scale_ * p, atol=1e-8)
    with pytest.raises(ValueError, match="shrinkage"):
        model.fold_in(503, items, ratings, shrinkage=-1)
    assert set(model.recommend(500, n=100)[0]).isdisjoint(items)


def test_fold_in_refreshes_a_known_user_and_keeps_others():
    model, mask = random_model(n_users=10, n_items=40, k=3)
    before = model.user_factors_.copy()
    n_users = len(model.user_map_)
    model.fold_in(4, [0, 1, 2], [5.0, 1.0, 3.0])
    assert len(model.user_map_) == n_users
    assert not np.allclose(model.user_factors_[4], before[4])
    np.testing.assert_array_equal(np.delete(model.user_factors_, 4, 0), np.delete(before, 4, 0))
    seen = model.seen_items_[model.seen_indptr_[4]:model.seen_indptr_[5]]
    np.testing.assert_array_equal(seen, [0, 1, 2])
    for u in (3, 5):
        row = model.seen_items_[model.seen_indptr_[u]:model.seen_indptr_[u + 1]]
        np.testing.assert_array_equal(row, np.flatnonzero(mask[u]))


def test_fold_in_several_users_with_string_ids_and_save(tmp_path):
    model = mfcore.Model(k=3, epochs=3).fit(["a", "b", "a"], ["x", "y", "y"], [4.0, 2.0, 5.0])
    model.fold_in(["c", "c", "d"], ["x", "y", "x"], [1.0, 5.0, 3.0])
    assert list(model.user_map_.ids) == ["a", "b", "c", "d"]
    model.save(tmp_path / "m.npz")
    loaded = mfcore.load(tmp_path / "m.npz")
    assert list(loaded.recommend("d", n=5)[0]) == ["y"]
    with pytest.raises(TypeError):
        model.fold_in(7, ["x"], [3.0])


def test_fold_in_bad_input():
    model, _ = random_model(n_users=5, n_items=8, k=2)
    with pytest.warns(UnknownIdWarning, match="ignored 1"):
        model.fold_in(100, [1, 999], [4.0, 2.0])
    with pytest.raises(ValueError, match="no rating of an item known"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            model.fold_in(101, [999], [4.0])
    assert 101 not in set(model.user_map_.ids)
    with pytest.raises(ValueError, match="finite"):
        model.fold_in(102, [1, 2], [4.0, np.nan])
    with pytest.raises(ValueError, match="differ in length"):
        model.fold_in([102, 103], [1, 2, 3], [4.0, 3.0, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        model.fold_in(104, [], [])


# --- command line ----------------------------------------------------------------------

def cli_run(capsys, *argv):
    from mfcore import cli
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recommend_and_similar(tmp_path, capsys):
    model, _ = random_model(n_users=20, n_items=30, k=3, dtype="float32")
    path = tmp_path / "m.npz"
    model.save(path)
    code, out, err = cli_run(capsys, "recommend", path, 3, 7, "-n", 4)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "user,rank,item,score" and len(lines) == 9
    items, scores = model.recommend(7, n=4)
    assert [line.split(",")[2] for line in lines[5:]] == [str(i) for i in items]
    assert [line.split(",")[1] for line in lines[5:]] == ["1", "2", "3", "4"]
    np.testing.assert_allclose([float(line.split(",")[3]) for line in lines[5:]], scores, atol=1e-4)
    code, out, err = cli_run(capsys, "recommend", path, 999, "-n", 2)
    assert code == 0 and "unknown" in err and len(out.splitlines()) == 3
    code, out, err = cli_run(capsys, "recommend", path, 999, "--unknown", "error")
    assert code == 1 and "999" in err
    code, out, err = cli_run(capsys, "similar", path, 5, "-n", 3)
    assert code == 0, err
    sim, _ = model.similar_items(5, n=3)
    assert [line.split(",")[2] for line in out.splitlines()[1:]] == [str(i) for i in sim]
    code, out, err = cli_run(capsys, "similar", path, 2, "--users", "-n", 2)
    assert code == 0 and out.splitlines()[0] == "user,rank,similar,similarity"
    code, out, err = cli_run(capsys, "similar", path, 12345)
    assert code == 1 and "12345" in err
    with pytest.raises(SystemExit):
        cli_run(capsys, "recommend", path, 3, "-n", 0)


def test_cli_recommend_string_ids_and_fewer_candidates(tmp_path, capsys):
    model = mfcore.Model(k=2, epochs=2).fit(["a", "a", "b"], ["x", "y", "x"], [4.0, 2.0, 5.0])
    model.save(tmp_path / "s.npz")
    code, out, err = cli_run(capsys, "recommend", tmp_path / "s.npz", "a", "b", "-n", 5)
    assert code == 0, err
    assert out.splitlines()[1:] == [f"b,1,y,{model.recommend('b')[1][0]:.4f}"]


def test_kernel_rejects_mismatched_arrays():
    q = np.zeros((3, 4), np.float32)
    packed = _recommend.pack_columns(np.zeros((40, 4), np.float32))
    assert packed.shape == (2, 4, _recommend.PANEL)
    args = dict(offsets=np.zeros(3, np.float32), col_bias=np.zeros(40, np.float32),
                col_items=np.arange(40, dtype=np.int32), excl_start=np.zeros(3, np.int64),
                excl_end=np.zeros(3, np.int64), excl_items=np.zeros(0, np.int32))
    out = (np.empty((3, 5), np.int32), np.empty((3, 5), np.float32))

    def call(**change):
        a = dict(args, **change)
        _recommend.top_n(change.get("queries", q), a["offsets"], change.get("packed", packed),
                         a["col_bias"], a["col_items"], a["excl_start"], a["excl_end"],
                         a["excl_items"], *out, 1)

    call()
    assert (out[0] >= 0).all()
    with pytest.raises(ValueError, match="per-query"):
        call(offsets=np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="per-column"):
        call(col_bias=np.zeros(39, np.float32))
    with pytest.raises(ValueError, match="pack_columns"):
        call(packed=_recommend.pack_columns(np.zeros((40, 3), np.float32)))
    with pytest.raises(ValueError, match="pack_columns"):
        call(col_items=np.arange(70, dtype=np.int32), col_bias=np.zeros(70, np.float32))


def test_kernel_equals_brute_force_on_random_shapes():
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=60, deadline=None)
    @given(n_queries=st.integers(0, 9), m=st.integers(0, 80), k=st.integers(1, 9),
           n=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), ties=st.booleans(),
           threads=st.sampled_from([1, 2]))
    def check(n_queries, m, k, n, seed, ties, threads):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n_queries, k))
        F = rng.normal(size=(m, k))
        bias = rng.normal(size=m)
        if ties:  # many equal scores: the order must fall back to the item row
            F = np.round(F)
            X = np.round(X)
            bias = np.zeros(m)
        offsets = rng.normal(size=n_queries)
        items = np.sort(rng.choice(10 * max(m, 1), m, replace=False)).astype(np.int32)
        excluded = [np.sort(rng.choice(items, rng.integers(0, m + 1), replace=False))
                    for _ in range(n_queries)]
        start = np.cumsum([0] + [len(e) for e in excluded])[:-1].astype(np.int64)
        end = (start + [len(e) for e in excluded]).astype(np.int64)
        flat = (np.concatenate(excluded) if n_queries else np.zeros(0)).astype(np.int32)
        out_items = np.empty((n_queries, n), np.int32)
        out_scores = np.empty((n_queries, n))
        _recommend.top_n(X, offsets, _recommend.pack_columns(F), bias, items, start, end, flat,
                         out_items, out_scores, threads)
        for q in range(n_queries):
            s = bias + F @ X[q]
            ok = ~np.isin(items, excluded[q])
            cand = np.flatnonzero(ok)
            order = cand[np.lexsort((cand, -s[cand]))][:n]
            # with ties (rounded, exactly representable scores) the order falls back to the item
            np.testing.assert_array_equal(out_items[q][out_items[q] >= 0], items[order])
            np.testing.assert_allclose(out_scores[q][:len(order)], s[order] + offsets[q],
                                       atol=1e-9)
            assert np.isnan(out_scores[q][len(order):]).all()
            assert (out_items[q][len(order):] == -1).all()

    check()


def test_replacing_seen_rows_equals_a_rebuild():
    from mfcore.data import replace_seen_rows, seen_csr

    rng = np.random.default_rng(7)
    for _trial in range(30):
        n_old, n_items = int(rng.integers(1, 12)), int(rng.integers(1, 15))
        u, i = rng.integers(0, n_old, 40), rng.integers(0, n_items, 40)
        indptr, items = seen_csr(u, i, n_old, n_items)
        n_users = n_old + int(rng.integers(0, 4))
        nu, ni = rng.integers(0, n_users, 6), rng.integers(0, n_items, 6)
        got = replace_seen_rows(indptr, items, nu, ni, n_users, n_items)
        keep = ~np.isin(u, nu)
        want = seen_csr(np.r_[u[keep], nu], np.r_[i[keep], ni], n_users, n_items)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[1].dtype == np.int32


def test_partial_fit_of_a_model_without_seen_items_keeps_none():
    model = mfcore.Model(k=2, epochs=1).fit([1, 1, 2], [10, 11, 10], [4.0, 3.0, 5.0])
    model.seen_indptr_ = model.seen_items_ = None  # as loaded from an older file
    model.partial_fit([1, 3], [12, 11], [2.0, 4.0])
    assert model.seen_indptr_ is None
    with pytest.raises(ValueError, match="exclude_seen=False"):
        model.recommend(1)


def test_item_counts_grow_with_partial_fit_and_survive_save(tmp_path):
    u, i = np.arange(60) // 6, np.arange(60) % 6  # every pair once
    model = mfcore.Model(k=2, epochs=1).fit(u, i, 1.0 + np.arange(60) % 5)
    assert model.item_counts_.tolist() == [10] * 6
    model.partial_fit([0, 1, 2], [0, 0, 99], [4.0, 5.0, 3.0])  # a new item: appended
    assert model.item_counts_.tolist() == [12] + [10] * 5 + [1]
    model.save(tmp_path / "m.mfz")
    assert np.array_equal(mfcore.load(tmp_path / "m.mfz").item_counts_, model.item_counts_)


# --- n beyond the catalogue costs nothing (issue 20, D12; issue 21) -------------------------

@pytest.mark.parametrize("call", ["recommend", "recommend_batch", "similar_items",
                                  "similar_users", "recommend_items"])
def test_n_far_beyond_the_candidates_allocates_no_n_sized_arrays(call):
    from conftest import peak_allocation

    model, mask = random_model(n_users=50, n_items=40, k=4)
    huge = 10**6   # (8 MB per user row if it were allocated)
    calls = {"recommend": lambda n: model.recommend(3, n=n),
             "recommend_batch": lambda n: model.recommend(np.arange(20), n=n),
             "recommend_items": lambda n: model.recommend(np.arange(20), n=n, items=[1, 2, 5]),
             "similar_items": lambda n: model.similar_items([1, 2], n=n),
             "similar_users": lambda n: model.similar_users(4, n=n)}
    (items, scores), peak = peak_allocation(lambda: calls[call](huge))
    assert peak < 1 << 20
    want_items, want_scores = calls[call](50)   # every candidate: the same answer
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(scores, want_scores)
    if call == "recommend_batch":
        assert items.shape == (20, 40)
    if call == "recommend_items":
        assert items.shape == (20, 3)
    if call == "similar_items":
        assert items.shape == (2, 39)
