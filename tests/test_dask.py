"""``mfcore.dask.fit`` on a local multi-process Dask cluster gives the local fit's model.

One module-scoped ``LocalCluster`` of 3 single-threaded worker processes; fits on 1, 2
or 3 of them (``workers=``) and on all (the default). Every equality here is exact
(``np.array_equal``), on the fitted arrays, id maps, mean, range and seen items.
"""
import asyncio
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed (pip install .[dask])")
dd = pytest.importorskip("dask.dataframe", reason="the dask extra is not installed")
import dask  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import mfcore  # noqa: E402
import mfcore.dask  # noqa: E402
from conftest import planted_ratings  # noqa: E402

N_WORKERS = 3


@pytest.fixture(scope="module")
def client():
    # a killed worker's nanny starts a new one; on a loaded machine that can take longer than
    # the 15 s after which a LocalCluster gives up on the worker and closes its nanny
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "300s"}), \
            LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def workers(client, n):
    return sorted(client.scheduler_info()["workers"])[:n]


def frame(seed=0, n_users=120, n_items=90, density=0.3, string_users=False, dyadic=False):
    u, i, r = planted_ratings(n_users=n_users, n_items=n_items, density=density, seed=seed)
    if dyadic:  # MovieLens-like half stars
        r = np.clip(np.round(r * 2) / 2, 0.5, 5)
    users = np.array([f"u{x}" for x in u]) if string_users else u * 3 + 1000
    return pd.DataFrame({"user": users, "item": i * 7, "rating": r})


def ddf_of(df, cuts):
    """A Dask DataFrame of ``df`` cut at rows ``cuts`` (equal cuts allowed: empty partitions)."""
    edges = [0, *cuts, len(df)]
    return dd.concat([dd.from_pandas(df.iloc[a:b], npartitions=1)
                      for a, b in zip(edges[:-1], edges[1:])])


FITTED = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "seen_indptr_",
          "seen_items_")


def assert_same_model(dist, local):
    for name in FITTED:
        a, b = getattr(dist, name), getattr(local, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert dist.user_map_ == local.user_map_ and dist.item_map_ == local.item_map_
    assert dist.user_map_.ids.dtype == local.user_map_.ids.dtype
    assert dist.global_mean_ == local.global_mean_
    assert dist.rating_range_ == local.rating_range_
    assert dist.n_ratings_ == local.n_ratings_ and dist.n_epochs_ == local.n_epochs_
    assert dist.best_epoch_ == local.best_epoch_
    for h, g in zip(dist.history_, local.history_, strict=True):
        assert h["epoch"] == g["epoch"] and h.get("val_rmse") == g.get("val_rmse")
        # the training SSE is a sum over shards: the same up to float rounding
        assert h["train_rmse"] == pytest.approx(g["train_rmse"], rel=1e-12)
        assert h["train_loss"] == pytest.approx(g["train_loss"], rel=1e-12)


@pytest.mark.parametrize("n_workers", [1, 2, 3])
@pytest.mark.parametrize("cuts", [[], [700, 700, 1500]], ids=["one-partition", "four-with-empty"])
def test_als_equals_the_local_fit_bit_for_bit(client, n_workers, cuts):
    df = frame(seed=n_workers)
    est = dict(k=6, iterations=4, n_threads=1)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating)
    dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, cuts),
                           workers=workers(client, n_workers))
    assert_same_model(dist, local)
    # per iteration no factor reaches the client; each shard sends its bands to the others
    sides = (len(local.user_factors_) + len(local.item_factors_)) * (6 + 1) * 4
    assert [h["exchanged_bytes"] for h in dist.history_] == [0] * 4
    assert [h["peer_bytes"] for h in dist.history_] == [(n_workers - 1) * sides] * 4


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_als_cg_equals_the_local_fit_bit_for_bit(client, n_workers):
    """``solver="cg"``: each shard starts its band's CG steps from the rows' current values
    (its copy of the model; the initial user rows sent at set-up), as the local fit does."""
    df = frame(seed=20 + n_workers)
    est = dict(k=6, iterations=4, solver="cg", cg_steps=2, n_threads=1)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating)
    dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [700, 1500]),
                           workers=workers(client, n_workers))
    assert_same_model(dist, local)
    exact = mfcore.ALS(**dict(est, solver="cholesky")).fit(df.user, df.item, df.rating)
    assert not np.array_equal(local.user_factors_, exact.user_factors_)  # the CG's own result


def test_als_on_six_workers_uses_every_worker_and_zero_iterations_keep_the_start(client):
    """Six in-process workers (distributed 2025.4-2026.6 listed five unless asked): six
    shards, each sending its bands to five others; 0 iterations gathers nothing."""
    df = frame(seed=3)
    est = dict(k=4, iterations=2, n_threads=1)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating)
    with LocalCluster(n_workers=6, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as six:
        dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [1000]), client=six)
        start = mfcore.dask.fit(mfcore.ALS(**dict(est, iterations=0)), ddf_of(df, []), client=six)
    assert_same_model(dist, local)
    sides = (len(local.user_factors_) + len(local.item_factors_)) * (4 + 1) * 4
    assert [h["peer_bytes"] for h in dist.history_] == [5 * sides] * 2
    assert_same_model(start, mfcore.ALS(**dict(est, iterations=0)).fit(df.user, df.item, df.rating))


def test_als_equal_with_string_ids_float64_and_unweighted_penalty(client):
    df = frame(seed=4, string_users=True)
    est = dict(k=5, iterations=3, dtype="float64", count_weighted=False, reg_bias=None)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating)
    dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [300, 1200]))
    assert_same_model(dist, local)


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_sgd_equals_the_local_fit_on_the_same_block_grid(client, n_workers):
    """DSGD over the local grid: every block trained as locally, so also the SSE is equal."""
    df = frame(seed=11, dyadic=True)
    est = dict(k=6, epochs=3, block_grid=4, lr=0.02, n_threads=1)
    local = mfcore.Model(**est).fit(df.user, df.item, df.rating)
    dist = mfcore.dask.fit(mfcore.Model(**est), ddf_of(df, [300, 300, 2000]),
                           workers=workers(client, n_workers))
    assert_same_model(dist, local)
    assert [h["train_loss"] for h in dist.history_] == [h["train_loss"] for h in local.history_]
    # item groups pass shard to shard (none with one shard); the model reaches the client at
    # the end only: each epoch only every row's penalty term and the held groups' numbers
    assert all((h["peer_bytes"] > 0) == (n_workers > 1) for h in dist.history_)
    terms = 8 * (len(local.user_map_) + len(local.item_map_) + 4)
    assert [h["exchanged_bytes"] for h in dist.history_] == [terms] * 3


def test_sgd_epochs_run_in_order_when_the_next_epochs_call_arrives_first(monkeypatch):
    """The client sends epoch 2's call right after epoch 1's (``SGDEpochs.step``); here
    epoch 1's is held back on the worker, so epoch 2's starts first: it waits for epoch 1
    to have run, and the model is still the local one. In-process workers, so that the
    shard can be patched here."""
    from mfcore.dask import sgd
    epoch_call, started = sgd.SGDShard.sgd_epoch, []

    async def first_one_late(self, epoch, inputs):
        started.append((epoch, self.epochs_run))
        if epoch == 1:
            await asyncio.sleep(0.5)
        return await epoch_call(self, epoch, inputs)
    monkeypatch.setattr(sgd.SGDShard, "sgd_epoch", first_one_late)
    df = frame(seed=11, dyadic=True)
    est = dict(k=6, epochs=4, block_grid=4, lr=0.02, n_threads=1)
    local = mfcore.Model(**est).fit(df.user, df.item, df.rating)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as own:
        dist = mfcore.dask.fit(mfcore.Model(**est), ddf_of(df, [700]), client=own)
    assert (2, 0) in started  # epoch 2's call came before epoch 1 had run
    assert_same_model(dist, local)


def test_sgd_with_validation_gathers_the_model_and_stops_early_as_locally(client):
    """Validation data read the model every epoch: then it is gathered every epoch, and
    early stopping restores the local fit's best epoch."""
    df, val = frame(seed=8, dyadic=True), frame(seed=8).sample(300, random_state=0)
    triple = (val.user, val.item, val.rating + np.random.default_rng(0).normal(0, 0.5, 300))
    est = dict(k=6, epochs=12, block_grid=4, lr=0.05, reg=0.0, n_iter_no_change=1, tol=0.0,
               n_threads=1)
    local = mfcore.Model(**est).fit(df.user, df.item, df.rating, validation=triple)
    dist = mfcore.dask.fit(mfcore.Model(**est), ddf_of(df, [600]), validation=triple,
                           workers=workers(client, 2))
    assert local.best_epoch_ < local.n_epochs_ < 12  # it stopped early, restoring an epoch
    assert_same_model(dist, local)  # val_rmse, best_epoch_ and the restored arrays too
    assert [h["train_loss"] for h in dist.history_] == [h["train_loss"] for h in local.history_]
    assert dist.stop_reason_ == local.stop_reason_
    model = sum(getattr(local, name).nbytes for name in FITTED[:4])
    assert all(h["exchanged_bytes"] > model for h in dist.history_)


def test_sgd_on_a_cluster_scores_like_a_default_local_fit(client):
    """A grid of 6 for 3 workers against the grid the local fit picks (1 for these data)."""
    u, i, r = planted_ratings(n_users=300, n_items=200, density=0.25, seed=12)
    df = pd.DataFrame({"user": u, "item": i, "rating": r})
    train, test = df.iloc[:-2000], df.iloc[-2000:]
    est = dict(k=8, epochs=30, lr=0.02, reg=0.03)
    local = mfcore.Model(**est).fit(train.user, train.item, train.rating)
    dist = mfcore.dask.fit(mfcore.Model(block_grid=6, **est), dd.from_pandas(train, npartitions=3))
    local_rmse = local.evaluate(test.user, test.item, test.rating)["rmse"]
    dist_rmse = dist.evaluate(test.user, test.item, test.rating)["rmse"]
    assert local_rmse < 0.45  # both learnt the planted structure (noise 0.3) ...
    assert abs(dist_rmse - local_rmse) < 0.002  # ... to the same accuracy


BAYES_FITTED = ("user_bias_samples_", "item_bias_samples_", "alpha_samples_",
                "user_hyper_samples_")


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_bayesian_mf_equals_the_local_fit_bit_for_bit(client, n_workers):
    """Several chunks of the sampler's sum of squares (4096 ratings) cut across shards."""
    df = frame(seed=13, n_users=160, n_items=110, density=0.6, dyadic=True)
    df = pd.concat([df, df.iloc[::50].assign(rating=3.0)], ignore_index=True)  # duplicates
    est = dict(k=3, n_samples=3, burn_in=2, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.DuplicateRatingsWarning)
        local = mfcore.BayesianMF(**est).fit(df.user, df.item, df.rating)
        dist = mfcore.dask.fit(mfcore.BayesianMF(**est), ddf_of(df, [4000, 4000, 9000]),
                               workers=workers(client, n_workers))
    assert len(df) > 2 * 4096
    assert_same_model(dist, local)
    for name in BAYES_FITTED:
        assert np.array_equal(getattr(dist, name), getattr(local, name)), name
    for h, g in zip(dist.history_, local.history_):
        assert (h["alpha"], h["train_rmse"]) == (g["alpha"], g["train_rmse"])
        assert h["exchanged_bytes"] == 0  # no state, no residual reaches the client
    query = (df.user[:50], df.item[:50])
    assert np.array_equal(dist.predict(*query, return_std=True)[1],
                          local.predict(*query, return_std=True)[1])


@pytest.mark.parametrize("policy", ["mean", "last", "keep"])
def test_duplicates_across_partitions_are_merged_as_locally(client, policy):
    df = frame(seed=5, dyadic=True)
    again = df.iloc[::7].assign(rating=lambda f: 6 - f.rating)  # same pairs, other ratings
    df = pd.concat([df.iloc[:900], again, df.iloc[900:], again.iloc[::2]], ignore_index=True)
    est = dict(k=4, iterations=3, duplicates=policy)
    with warnings.catch_warnings(record=True) as local_warnings:
        warnings.simplefilter("always")
        local = mfcore.ALS(**est).fit(df.user, df.item, df.rating)
    with warnings.catch_warnings(record=True) as dist_warnings:
        warnings.simplefilter("always")
        dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [500, 1000, 1600]))
    assert_same_model(dist, local)
    messages = [[str(w.message) for w in ws if w.category is mfcore.DuplicateRatingsWarning]
                for ws in (local_warnings, dist_warnings)]
    assert messages[0] == messages[1] and len(messages[0]) == (policy != "keep")


def local_error(df):
    with pytest.raises(Exception) as info:
        mfcore.ALS().fit(df.user, df.item, df.rating)
    return info.value


@pytest.mark.parametrize("case", ["nan-rating", "bad-user-id", "mixed-id-types", "duplicates"])
def test_bad_input_gets_the_local_error(client, case):
    df = frame(seed=6).astype({"user": object})
    cuts = [400, 800]
    if case == "nan-rating":
        df.loc[1234, "rating"] = np.nan
    elif case == "bad-user-id":
        df.loc[950, "user"] = 12.5
    elif case == "mixed-id-types":
        df.loc[800:, "user"] = [f"s{x}" for x in df.user[800:]]
    est = mfcore.ALS(duplicates="error")
    if case == "duplicates":
        df = pd.concat([df, df.iloc[[1000]]], ignore_index=True)
        with pytest.raises(ValueError) as info:
            mfcore.ALS(duplicates="error").fit(df.user, df.item, df.rating)
        expected = info.value
    else:
        expected = local_error(df)
    if case == "mixed-id-types":  # whole partitions of each kind (Dask would cast a
        with dask.config.set({"dataframe.convert-string": False}):  # mixed one to strings)
            ddf = ddf_of(df, cuts)
    else:
        ddf = ddf_of(df, cuts).astype({"user": "float64"})
    with pytest.raises(type(expected)) as got:
        mfcore.dask.fit(est, ddf)
    assert str(got.value) == str(expected)
    assert not est._is_fitted()


def test_missing_columns_and_empty_data_are_named(client):
    df = frame(seed=7)
    with pytest.raises(ValueError, match="no column 'score'"):
        mfcore.dask.fit(mfcore.ALS(), dd.from_pandas(df, npartitions=2),
                        columns=("user", "item", "score"))
    empty = dd.from_pandas(df.iloc[:0], npartitions=1)
    with pytest.raises(ValueError) as info:
        mfcore.dask.fit(mfcore.ALS(), empty)
    assert str(info.value) == str(local_error(df.iloc[:0]))
    with pytest.raises(ValueError, match="tcp://nowhere:1"):
        mfcore.dask.fit(mfcore.ALS(), dd.from_pandas(df, npartitions=2),
                        workers=["tcp://nowhere:1"])
    with pytest.raises(TypeError, match="got FactorModel"):
        mfcore.dask.fit(mfcore.FactorModel(), dd.from_pandas(df, npartitions=2))
    with pytest.raises(NotImplementedError, match="implicit"):
        mfcore.dask.fit(mfcore.BayesianMF(implicit=True), dd.from_pandas(df, npartitions=2))


def test_a_partition_missing_a_column_is_named_not_a_bare_key_error(client):
    # issue 20, D22: a frame built from partitions its metadata does not describe
    df = frame(seed=7)
    parts = [dask.delayed(df.iloc[:500]), dask.delayed(df.iloc[500:].drop(columns="rating"))]
    ddf = dd.from_delayed(parts, meta=df.iloc[:0], verify_meta=False)
    with pytest.raises(ValueError, match="a partition has no column 'rating'"):
        mfcore.dask.fit(mfcore.ALS(), ddf)


@pytest.mark.parametrize("as_dask", [False, True], ids=["local-validation", "dask-validation"])
def test_validation_early_stopping_and_callbacks_as_locally(client, as_dask, capsys):
    df, val = frame(seed=8), frame(seed=8).sample(300, random_state=0)
    val = val.assign(rating=val.rating + np.random.default_rng(0).normal(0, 0.3, len(val)))
    calls = {"local": [], "dask": []}

    def callback(name):
        def record(model, epoch, metrics):
            calls[name].append((epoch, metrics["val_rmse"]))
            return epoch == 9  # stops a fit that early stopping did not
        return record

    est = dict(k=12, iterations=12, reg=0.01, n_iter_no_change=1, verbose=True)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating,
                                  validation=(val.user, val.item, val.rating),
                                  callback=callback("local"))
    printed_local = capsys.readouterr().out
    validation = dd.from_pandas(val, npartitions=2, sort=False) if as_dask else (val.user, val.item,
                                                                     val.rating)
    dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [600]), validation=validation,
                           callback=callback("dask"))
    printed_dist = capsys.readouterr().out
    assert local.best_epoch_ is not None and local.n_epochs_ < 12
    assert_same_model(dist, local)
    assert calls["dask"] == calls["local"]
    epoch_lines = [[line for line in printed.splitlines() if line.startswith("epoch")]
                   for printed in (printed_local, printed_dist)]
    assert len(epoch_lines[0]) == len(epoch_lines[1]) == local.n_epochs_
    assert printed_dist.splitlines()[-1] == printed_local.splitlines()[-1]  # how it stopped


def test_validation_and_early_stopping_happen_on_the_shards_as_locally(client):
    """No callback: the model stays on the shards; shard 0 scores the validation data and
    every shard keeps its bands of the best iteration, restored at the end."""
    df, val = frame(seed=8), frame(seed=8).sample(300, random_state=0)
    val = val.assign(rating=val.rating + np.random.default_rng(0).normal(0, 0.3, len(val)))
    triple = (val.user, val.item, val.rating)
    est = dict(k=12, iterations=12, reg=0.01, n_iter_no_change=2, tol=1e-3)
    local = mfcore.ALS(**est).fit(df.user, df.item, df.rating, validation=triple)
    dist = mfcore.dask.fit(mfcore.ALS(**est), ddf_of(df, [600]), validation=triple,
                           workers=workers(client, 2))
    assert local.best_epoch_ is not None and local.best_epoch_ < local.n_epochs_
    assert_same_model(dist, local)  # val_rmse, best_epoch_ and the restored arrays too
    assert dist.stop_reason_ == local.stop_reason_
    assert [h["exchanged_bytes"] for h in dist.history_] == [0] * dist.n_epochs_


@pytest.mark.parametrize("n_workers", [1, 3])
def test_bayesian_mf_scores_validation_on_the_shards_as_locally(client, n_workers):
    """The running posterior mean's RMSE, burn-in and kept sweeps, as the local sampler's."""
    df = frame(seed=9, dyadic=True)
    val = frame(seed=10, dyadic=True).sample(200, random_state=1)
    val = val[val.user.isin(df.user) & val.item.isin(df.item)]
    triple = (val.user, val.item, val.rating)
    est = dict(k=3, burn_in=2, n_samples=3, thin=1, n_threads=1)
    local = mfcore.BayesianMF(**est).fit(df.user, df.item, df.rating, validation=triple)
    dist = mfcore.dask.fit(mfcore.BayesianMF(**est), ddf_of(df, [900]), validation=triple,
                           workers=workers(client, n_workers))
    assert len({h["val_rmse"] for h in local.history_}) == len(local.history_) == 5
    assert_same_model(dist, local)
    assert all(h["exchanged_bytes"] == 0 for h in dist.history_)


def test_a_failed_fit_leaves_a_fitted_estimator_as_it_was(client):
    df = frame(seed=9)
    est = mfcore.ALS(k=4, iterations=2).fit(df.user, df.item, df.rating)
    before = est.user_factors_.copy()
    bad = df.assign(rating=df.rating.where(df.index != 10, np.inf))
    with pytest.raises(ValueError, match="finite"):
        mfcore.dask.fit(est, dd.from_pandas(bad, npartitions=2))
    assert np.array_equal(est.user_factors_, before)


def test_import_mfcore_does_not_import_dask(tmp_path):
    code = "import sys, mfcore; assert not any(m.split('.')[0] in ('dask', 'distributed') " \
           "for m in sys.modules), sorted(m for m in sys.modules if 'dask' in m)"
    # the mfcore under test (installed, or built in place), not an unbuilt source folder in cwd
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfcore.__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)


def test_a_lost_worker_fails_the_fit_naming_worker_and_iteration(client):
    """Runs last: the killed worker's nanny starts a new one, awaited before returning."""
    df = frame(seed=10)
    victim = workers(client, N_WORKERS)[-1]

    def kill_at_2(model, epoch, metrics):
        if epoch == 2:
            try:
                client.run(os._exit, 1, workers=[victim])
            except Exception:  # the worker dies before it answers
                pass

    est = mfcore.ALS(k=4, iterations=6)
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
            with pytest.raises(mfcore.dask.WorkerLostError) as info:
                mfcore.dask.fit(est, ddf_of(df, [500, 1000]), callback=kill_at_2)
        assert victim in str(info.value) and "at iteration 3" in str(info.value)
        assert not est._is_fitted()
    finally:
        client.wait_for_workers(N_WORKERS, timeout=60)


#: run on the victim's worker: its shard exits while the others wait for its item band of
#: iteration 3 (after solving it, before sending it)
DIE_IN_EXCHANGE = """
import os, mfcore.dask._shard as shard
allgather = shard.Shard.allgather
def dying(self, tag, *args):
    if tag == (3, 1):
        os._exit(1)
    return allgather(self, tag, *args)
shard.Shard.allgather = dying
"""


#: the same for DSGD: the victim's shard exits at the start of epoch 3, while the next
#: epoch's call is already sent (``SGDEpochs.step``) and the others wait for its item groups
DIE_IN_EPOCH = """
import os, mfcore.dask.sgd as sgd
epoch = sgd.SGDShard._epoch
def dying(self, number, *args):
    if number == 3:
        os._exit(1)
    return epoch(self, number, *args)
sgd.SGDShard._epoch = dying
"""


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_a_worker_lost_during_an_exchange_fails_promptly_and_frees_the_others(solver):
    """On a cluster of its own (it is not waited for to heal). The other shards, waiting for
    the lost one's band, are stopped: the other workers train again at once."""
    df = frame(seed=10)
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as own:
        *others, victim = workers(own, 3)
        own.run(exec, DIE_IN_EXCHANGE if solver == "als" else DIE_IN_EPOCH, {},
                workers=[victim])
        est = (mfcore.ALS(k=4, iterations=6) if solver == "als"
               else mfcore.Model(k=4, epochs=6, block_grid=3))
        outcome = []

        def fit():
            try:
                mfcore.dask.fit(est, ddf_of(df, [500, 1000]), client=own)
            except Exception as exc:  # noqa: BLE001 (checked below)
                outcome.append(exc)
        runner = threading.Thread(target=fit, daemon=True)
        runner.start()
        runner.join(300)  # (the shards' own wait for a peer would last EXCHANGE_TIMEOUT, 1 h)
        assert not runner.is_alive(), "mfcore.dask.fit hung after losing a worker mid-exchange"
        assert isinstance(outcome[0], mfcore.WorkerLostError), outcome
        assert victim in str(outcome[0]) and "at iteration 3" in str(outcome[0])
        assert not est._is_fitted()
        again = mfcore.dask.fit(mfcore.ALS(k=4, iterations=2), ddf_of(df, [500]), client=own,
                                workers=others)
        assert again.n_epochs_ == 2


@pytest.mark.slow
def test_a_worker_lost_before_its_shard_is_placed_fails_promptly_instead_of_hanging(
        client, monkeypatch):
    """Issue 20, D2: a shard is pinned to its worker; when that worker died before the shard
    was placed (its nanny restarts it at another address), the fit waited forever. Runs
    last, like the test above: it awaits the restarted worker before returning."""
    victim = workers(client, N_WORKERS)[-1]
    load = mfcore.dask._load

    def kill_then_load(*args, **kwargs):   # the victim dies after the scan, before placing
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:  # the worker dies before it answers
            pass
        while victim in client.scheduler_info()["workers"]:
            threading.Event().wait(0.05)
        return load(*args, **kwargs)
    monkeypatch.setattr(mfcore.dask, "_load", kill_then_load)
    est, outcome = mfcore.ALS(k=4, iterations=3), []

    def fit():
        try:
            mfcore.dask.fit(est, ddf_of(frame(seed=11), [500, 1000]))
        except Exception as exc:  # noqa: BLE001 (checked below)
            outcome.append(exc)
    try:
        runner = threading.Thread(target=fit, daemon=True)
        runner.start()
        runner.join(60)
        assert not runner.is_alive(), "mfcore.dask.fit hung after losing a worker"
        assert isinstance(outcome[0], mfcore.WorkerLostError), outcome
        assert victim in str(outcome[0]) and "while its shard was loaded" in str(outcome[0])
        assert not est._is_fitted()
    finally:
        client.wait_for_workers(N_WORKERS, timeout=60)


def test_a_ctrl_c_on_the_client_stops_the_shards_between_blocks_of_rows(monkeypatch):
    """Issue 20, D20 on Dask: a Ctrl-C while the client waits for an iteration aborts the
    shards, which stop before their next block of rows (they solved the whole iteration
    before); the estimator is as it was and the workers train again at once. In-process
    workers, so that the kernel can be slowed and counted here."""
    from mfcore.dask import _cluster
    from mfcore.estimators import als
    df = frame(seed=12, n_users=600, n_items=400, density=0.03)
    blocks, real_solve, real_lost = [], als.solve_rows, _cluster._lost_worker

    def slow_solve(*args):   # 5 ms a block, ~300 blocks a shard's user side
        threading.Event().wait(0.005)
        blocks.append(1)
        return real_solve(*args)

    def interrupted(*args):   # where a SIGINT lands: the client's poll for lost workers
        if len(blocks) >= 20:
            raise KeyboardInterrupt
        return real_lost(*args)
    est = mfcore.ALS(k=4, iterations=3, n_threads=1).fit(df.user, df.item, df.rating)
    before = {name: getattr(est, name).copy() for name in FITTED}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as own:
        monkeypatch.setattr(als, "solve_rows", slow_solve)
        monkeypatch.setattr(als, "BLOCK_FLOPS", 10.0)   # one row a block: 1000 an iteration
        monkeypatch.setattr(_cluster, "_lost_worker", interrupted)
        with pytest.raises(KeyboardInterrupt):
            mfcore.dask.fit(est.set_params(iterations=5), ddf_of(df, [500]), client=own)
        monkeypatch.setattr(_cluster, "_lost_worker", real_lost)
        threading.Event().wait(0.5)   # (the abort reaches the shards asynchronously)
        stopped_at = len(blocks)
        threading.Event().wait(1.5)   # ~300 more blocks per shard if they went on
        assert len(blocks) == stopped_at < 300, (stopped_at, len(blocks))
        for name, value in before.items():
            assert np.array_equal(getattr(est, name), value), name
        monkeypatch.setattr(als, "BLOCK_FLOPS", 1e9)
        again = mfcore.dask.fit(mfcore.ALS(k=4, iterations=1), ddf_of(df, [500]), client=own)
        assert again.n_epochs_ == 1


def raised_within(timeout, call):
    """What ``call()`` raised (None if it returned), run in a thread and waited for at most
    ``timeout`` seconds: a fit that hangs fails the test instead of stalling the suite."""
    outcome = []

    def run():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 (the caller checks it)
            outcome.append(exc)
    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout)
    assert not runner.is_alive(), f"still running after {timeout} s"
    return outcome[0] if outcome else None


async def _remove_worker(address, dask_scheduler=None):
    await dask_scheduler.remove_worker(address, stimulus_id="test-lost-replica", close=True)


@pytest.mark.parametrize("stage", ["scan", "load"])
def test_data_lost_with_a_worker_outside_the_fit_fails_it_promptly(monkeypatch, stage):
    """A loss beyond the fit's own workers (issue 22): the partitions are scattered to a
    worker the fit does not train on, which leaves before the scan or after it (before the
    shards are placed), so no worker holds them and Dask cancels what needs them ("lost
    dependencies").
    The fit raises WorkerLostError at once and the estimator is as it was. Deterministic:
    in-process workers without work stealing (a task runs where its inputs are, so the
    partitions never leave their worker), and the scheduler drops the worker at a fixed
    point of the fit, not on a timer."""
    df = frame(seed=13)
    est = mfcore.ALS(k=4, iterations=2).fit(df.user, df.item, df.rating)
    before = {name: getattr(est, name).copy() for name in FITTED}
    load = mfcore.dask._load

    def lose(client, futures):
        assert set().union(*client.who_has(futures).values()) == {holder}  # no other copy
        client.run_on_scheduler(_remove_worker, holder)

    def lose_then_load(client, parts, *args, **kwargs):
        lose(client, parts[0])
        return load(client, parts, *args, **kwargs)
    with dask.config.set({"distributed.scheduler.work-stealing": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                         dashboard_address=":0") as cluster, Client(cluster) as own:
        trainer, holder = workers(own, 2)
        pieces = own.scatter([df.iloc[:700], df.iloc[700:]], workers=[holder])
        ratings = dd.from_delayed(pieces, meta=df.iloc[:0], verify_meta=False)
        if stage == "scan":
            lose(own, pieces)
        else:
            monkeypatch.setattr(mfcore.dask, "_load", lose_then_load)
        error = raised_within(120, lambda: mfcore.dask.fit(est, ratings, client=own,
                                                            workers=[trainer]))
    assert isinstance(error, mfcore.WorkerLostError), error
    assert "data the fit needs was lost with a worker" in str(error)
    assert "lost dependencies" in str(error)
    for name, value in before.items():
        assert np.array_equal(getattr(est, name), value), name


def test_a_shard_error_while_the_others_wait_for_its_part_fails_the_fit_at_once(monkeypatch):
    """The last shard fails (its own error, not a lost worker) after the others have sent it
    their band and wait for its: the client, which awaited the shards in band order, waited
    with the first for EXCHANGE_TIMEOUT (an hour); now the first failure in any band ends
    the call and stops the others. In-process workers, so the shard code can be patched."""
    from mfcore.dask import _shard
    allgather = _shard.Shard.allgather

    def failing(self, tag, *args):
        if tag == (2, 1) and self.band == len(self.peers) - 1:
            raise ValueError("the last shard's own error")
        return allgather(self, tag, *args)
    monkeypatch.setattr(_shard.Shard, "allgather", failing)
    df = frame(seed=14)
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as own:
        error = raised_within(120, lambda: mfcore.dask.fit(
            mfcore.ALS(k=4, iterations=4), ddf_of(df, [500]), client=own))
        assert isinstance(error, ValueError), error
        assert "the last shard's own error" in str(error)
        monkeypatch.setattr(_shard.Shard, "allgather", allgather)
        again = mfcore.dask.fit(mfcore.ALS(k=4, iterations=2), ddf_of(df, [500]), client=own)
        assert again.n_epochs_ == 2
