"""Ranking metrics: hand-computed tiny cases and a per-user reference loop."""
import numpy as np
import pytest

import mfcore
from mfcore.metrics import hit_metrics, ranking_metrics


def test_hit_metrics_hand_computed():
    hits = [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    m = hit_metrics(hits, [2, 1, 5], k=3)
    d2, d3 = 1 / np.log2(3), 0.5
    assert m["precision"] == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert m["recall"] == pytest.approx((1 + 0 + 1 / 5) / 3)
    assert m["ndcg"] == pytest.approx(((1 + d3) / (1 + d2) + 0 + d2 / (1 + d2 + d3)) / 3)
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + 0 + (1 / 2) / 3) / 3)
    assert m["hit_rate"] == pytest.approx(2 / 3)


def test_hit_metrics_perfect_ranking_scores_one():
    m = hit_metrics(np.ones((4, 5), bool), [5, 7, 5, 9], k=5)
    assert m["precision"] == m["ndcg"] == m["map"] == m["hit_rate"] == pytest.approx(1.0)


def test_hit_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError, match="hits must be"):
        hit_metrics(np.zeros((2, 3), bool), [1, 1], k=4)
    with pytest.raises(ValueError, match="no user"):
        hit_metrics(np.zeros((0, 3), bool), [], k=3)
    with pytest.raises(ValueError, match="at least one relevant"):
        hit_metrics(np.zeros((1, 3), bool), [0], k=3)


def bias_model():
    """Items a..e ranked by item bias alone (factors zero); user 1 saw a, user 2 saw b."""
    model = mfcore.Model(k=1, epochs=0).fit([1, 2, 3, 3, 3], list("abcde"), [3.0, 4, 3, 3, 3])
    model.user_factors_[:] = 0
    model.item_factors_[:] = 0
    model.item_bias_[:] = [0.5, 0.4, 0.3, 0.2, 0.1]
    return model


def test_ranking_metrics_hand_computed_end_to_end():
    model = bias_model()
    # user 1 gets [b, c]: relevant {b, e}; user 2 gets [a, c]: relevant {d, z (unknown item)};
    # user 4 is unknown and gets the fallback [a, b]: relevant {a}; user 3 has nothing relevant.
    test = [(1, "b", 5), (1, "b", 5), (1, "e", 4), (1, "c", 2), (2, "d", 4), (2, "z", 5),
            (4, "a", 5), (3, "a", 1)]
    users, items, ratings = zip(*test)
    m = ranking_metrics(model, users, items, ratings, k=2, threshold=4)
    d2 = 1 / np.log2(3)
    assert m["n_users"] == 3 and m["unknown_users"] == 1 and m["k"] == 2
    assert m["precision"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["ndcg"] == pytest.approx((1 / (1 + d2) + 0 + 1) / 3)
    assert m["map"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["hit_rate"] == pytest.approx(2 / 3)
    assert m["coverage"] == pytest.approx(3 / 5)
    # without exclusion user 1 gets [a, b] and user 2 [a, b]
    m = ranking_metrics(model, users, items, ratings, k=2, threshold=4, exclude_seen=False)
    assert m["precision"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert m["ndcg"] == pytest.approx((d2 / (1 + d2) + 0 + 1) / 3)
    assert m["coverage"] == pytest.approx(2 / 5)


def reference(model, users, items, ratings, k, threshold):
    """Per-user loop over model.recommend: the obvious implementation."""
    per_user = {}
    for u, i, r in zip(users, items, ratings):
        if r >= threshold:
            per_user.setdefault(u, set()).add(i)
    rows = {"precision": [], "recall": [], "ndcg": [], "map": [], "hit_rate": []}
    recommended = set()
    for u, rel in per_user.items():
        recs, _ = model.recommend(u, n=k)
        recommended |= set(recs)
        hit = [item in rel for item in recs] + [False] * (k - len(recs))
        disc = [1 / np.log2(j + 2) for j in range(k)]
        h = sum(hit)
        rows["precision"].append(h / k)
        rows["recall"].append(h / len(rel))
        rows["ndcg"].append(sum(d for d, x in zip(disc, hit) if x)
                            / sum(disc[:min(k, len(rel))]))
        rows["map"].append(sum(sum(hit[:j + 1]) / (j + 1) for j in range(k) if hit[j])
                           / min(k, len(rel)))
        rows["hit_rate"].append(float(h > 0))
    out = {name: float(np.mean(v)) for name, v in rows.items()}
    out["coverage"] = len(recommended) / len(model.item_map_)
    return out


def test_ranking_metrics_equal_a_per_user_loop():
    rng = np.random.default_rng(3)
    n_users, n_items = 60, 80
    pairs = np.unique(rng.integers(0, [n_users, n_items], (1500, 2)), axis=0)
    model = mfcore.Model(k=4, epochs=0, init_std=1.0).fit(
        pairs[:, 0], pairs[:, 1], 3.0 + np.arange(len(pairs)) % 2)
    model.item_bias_[:] = rng.normal(0, 1, len(model.item_map_))
    tu = rng.integers(0, n_users, 600)
    ti = rng.integers(0, n_items, 600)
    tr = rng.integers(1, 6, 600).astype(float)
    got = ranking_metrics(model, tu, ti, tr, k=7, threshold=4)
    want = reference(model, tu, ti, tr, 7, 4)
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name


def test_ranking_metrics_bad_input():
    model = bias_model()
    with pytest.raises(ValueError, match="no relevant"):
        ranking_metrics(model, [1], ["b"], [2.0], k=2, threshold=4)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        ranking_metrics(model, [1], ["b"], [5.0], k=0)
    with pytest.raises(ValueError, match="differ in length"):
        ranking_metrics(model, [1, 2], ["b"], [5.0], k=2)
    with pytest.raises(ValueError, match="threshold"):
        ranking_metrics(model, [1], ["b"], [5.0], threshold=float("nan"))


def test_ranking_metrics_default_model_on_ml100k_u1(ml100k):
    from mfcore.io import read_ratings
    base = read_ratings(ml100k("u1.base"))
    test = read_ratings(ml100k("u1.test"))
    model = mfcore.Model(seed=0).fit(base["user"], base["item"], base["rating"])
    m = ranking_metrics(model, test["user"], test["item"], test["rating"], k=10, threshold=4)
    popular = mfcore.Model(k=1, epochs=0).fit(base["user"], base["item"], base["rating"])
    counts = base["item"].value_counts()
    popular.item_bias_[:] = counts.reindex(popular.item_map_.ids).to_numpy() / counts.max()
    pop = ranking_metrics(popular, test["user"], test["item"], test["rating"], k=10, threshold=4)
    assert m["n_users"] == pop["n_users"] > 400
    assert 0 < m["precision"] <= 1 and 0 < m["ndcg"] <= 1
    assert m["coverage"] > pop["coverage"]


def random_setup(seed=3):
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 80
    pairs = np.unique(rng.integers(0, [n_users, n_items], (1500, 2)), axis=0)
    model = mfcore.Model(k=4, epochs=0, init_std=1.0).fit(
        pairs[:, 0], pairs[:, 1], 3.0 + np.arange(len(pairs)) % 2)
    model.item_bias_[:] = rng.normal(0, 1, len(model.item_map_))
    test = (rng.integers(0, n_users, 600), rng.integers(0, n_items, 600),
            rng.integers(1, 6, 600).astype(float))
    return model, test


@pytest.mark.parametrize("rank_by", ["prediction", "choice"])
def test_blocks_of_users_give_the_same_metrics(rank_by):
    model, test = random_setup()
    whole = ranking_metrics(model, *test, k=7, rank_by=rank_by)
    for batch_size in (1, 7, 50):
        assert ranking_metrics(model, *test, k=7, rank_by=rank_by, batch_size=batch_size) == whole
    items, _ = model.recommend(np.unique(test[0]), n=7, rank_by=rank_by)
    # the rule is passed through: the two rules recommend different lists here
    assert whole != ranking_metrics(model, *test, k=7,
                                    rank_by={"prediction": "choice"}.get(rank_by, "prediction"))


def test_ranking_metrics_bad_k_and_users_with_nothing_left():
    model = bias_model()  # 5 items
    with pytest.raises(ValueError, match="k=6 exceeds the 5 items of the catalogue"):
        ranking_metrics(model, [1], ["b"], [5.0], k=6)
    assert ranking_metrics(model, [1], ["b"], [5.0], k=5)["n_users"] == 1
    # user 9 has rated every item: its list is empty (all padding), so it scores 0; a
    # relevant item it rated in training counts in recall's denominator but cannot be hit
    full = mfcore.Model(k=1, epochs=0).fit([9] * 3 + [8], ["a", "b", "c", "a"], [4, 3, 5, 4])
    m = ranking_metrics(full, [9, 8], ["a", "b"], [5, 5], k=2, rank_by="prediction")
    assert m["n_users"] == 2 and m["precision"] == pytest.approx(0.25)  # user 8 hits b of [b, c]
    assert m["recall"] == pytest.approx(0.5) and m["coverage"] == pytest.approx(2 / 3)
    assert len(full.recommend(9)[0]) == 0


def test_top_n_metrics_for_any_recommender():
    from mfcore.metrics import top_n_metrics
    calls = []

    def recommend(ids):
        calls.append(list(ids))
        return np.tile([2, 0, -1], (len(ids), 1))

    # users a, b, c; item 7 lies outside the catalogue (unknown): relevant, never hit
    m = top_n_metrics(recommend, ["a", "a", "b", "c", "c"], [0, 7, 1, 2, 2], [5, 4, 4, 4, 3],
                      n_items=3, k=3, batch_size=2)
    assert calls == [["a", "b"], ["c"]]
    d2 = 1 / np.log2(3)
    assert m["precision"] == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["ndcg"] == pytest.approx((d2 / (1 + d2) + 0 + 1) / 3)
    assert m["coverage"] == pytest.approx(2 / 3) and m["n_users"] == 3
    with pytest.raises(ValueError, match=r"recommend returned .* expected integer item rows of "
                                         r"shape \(2, 3\)"):
        top_n_metrics(lambda ids: np.zeros((len(ids), 2), int), ["a", "b"], [0, 1], [5, 5],
                      n_items=3, k=3)
    with pytest.raises(ValueError, match="items must be integer item rows >= 0"):
        top_n_metrics(recommend, ["a"], [-1], [5], n_items=3, k=3)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        top_n_metrics(recommend, ["a"], [1], [5], n_items=3, k=3, threshold=True)


def test_choice_ranking_beats_prediction_ranking_on_ml100k_u1(ml100k):
    """Regression test of issue 18: ALS ranked by predicted rating alone scored NDCG@10 0.045
    on u1 (lists full of items two people rated highly), under the most-rated items' 0.244."""
    from mfcore.io import read_ratings
    base = read_ratings(ml100k("u1.base"))
    test = read_ratings(ml100k("u1.test"))
    model = mfcore.ALS(seed=0, iterations=8).fit(base["user"], base["item"], base["rating"])
    popular = mfcore.Model(k=1, epochs=0).fit(base["user"], base["item"], base["rating"])
    popular.item_bias_[:] = 0  # ranked by item_counts_ alone
    args = (test["user"], test["item"], test["rating"])
    pop = ranking_metrics(popular, *args, rank_by="choice")
    default = ranking_metrics(model, *args)
    by_rating = ranking_metrics(model, *args, rank_by="prediction")
    assert default["ndcg"] > pop["ndcg"] > by_rating["ndcg"]
    top, _ = model.recommend(base["user"].unique(), n=10)
    counts = base["item"].value_counts()
    assert (counts.reindex(top.ravel()).to_numpy() < 5).mean() < 0.01
