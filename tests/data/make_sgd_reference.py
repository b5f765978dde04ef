"""Record SGD fits (``mfcore.Model``) so that later code can be held to them bit for bit.

Run from the repository root with a built mfcore: ``python tests/data/make_sgd_reference.py``.
It writes ``sgd_reference_<simd path>.npz`` for every SIMD path this CPU supports (the
paths differ in the last bits, see ``mfcore.show_config``); with ``--v1`` also
``model_format_v1.mfz``, a model file in the first file format, which only the code of
commit 5022567 writes. ``tests/test_reference.py`` replays every case.

The files were first written by the code of commit 5022567 (before the estimator
redesign), the SGD records again after scale-free training (issue 14: the one intended
change of SGD's results); regenerate them only for an intended change of the SGD
results, in a commit of its own that says why.
"""
import hashlib
import json
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def planted(n_users=400, n_items=300, rank=4, density=0.7, noise=0.3, seed=0):
    """~84,000 ratings of a planted low-rank model: enough for a 3x3 block grid."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(0, 0.6, (n_users, rank)), rng.normal(0, 0.6, (n_items, rank))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.0 + bu[users] + bi[items] + np.einsum("nk,nk->n", P[users], Q[items])
    r = np.clip(np.round(r + rng.normal(0, noise, len(users))), 1, 5)
    perm = rng.permutation(len(users))
    return users[perm], items[perm], r[perm]


def query_pairs(seed=99, n=500):
    """Pairs to predict: known users and items, plus a few unknown ids (-7 / 9999)."""
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, 420, n), rng.integers(0, 320, n)
    u[:5], i[5:10] = -7, 9999
    return u, i


def cases():
    """name -> function(threads) returning a fitted Model. Each is replayed by the test."""
    import mfcore
    u, i, r = planted()
    half = len(r) // 2
    extra = planted(n_users=420, n_items=320, density=0.05, seed=5)
    dup = (np.r_[u[:20000], u[:500]], np.r_[i[:20000], i[:500]], np.r_[r[:20000], r[:500] - 1])

    def default(seed):
        return lambda t: mfcore.Model(epochs=6, seed=seed, n_threads=t).fit(u, i, r)

    def warm(t):
        m = mfcore.Model(k=20, epochs=3, warm_start=True, seed=4, n_threads=t)
        return m.fit(u, i, r).fit(u[:half], i[:half], r[:half])

    def partial(t):
        m = mfcore.Model(k=16, epochs=3, seed=5, n_threads=t).fit(u[:half], i[:half], r[:half])
        return m.partial_fit(extra[0], extra[1], extra[2], epochs=2)

    def early(t):
        return mfcore.Model(k=8, epochs=60, lr=0.03, validation_fraction=0.1, n_iter_no_change=3,
                            seed=6, n_threads=t).fit(u, i, r)

    def duplicates(t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mfcore.DuplicateRatingsWarning)
            return mfcore.Model(k=10, epochs=4, seed=8, n_threads=t).fit(*dup)

    return {
        "default_seed0": default(0),
        "default_seed1": default(1),
        "float64_k20_seed3": lambda t: mfcore.Model(
            k=20, epochs=5, dtype="float64", seed=3, n_threads=t).fit(u, i, r),
        "k20_inverse_regbias": lambda t: mfcore.Model(
            k=20, epochs=5, lr_schedule="inverse", lr_decay=0.2, reg_bias=0.02, seed=2,
            n_threads=t).fit(u, i, r),
        "k13_float64": lambda t: mfcore.Model(
            k=13, epochs=4, dtype="float64", lr=0.02, init_std=0.05, seed=9,
            n_threads=t).fit(u, i, r),
        "warm_start": warm,
        "partial_fit": partial,
        "early_stopping": early,
        "duplicates_mean": duplicates,
    }


def _digest(a):
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()).hexdigest()


def record(model):
    """What a case must reproduce: parameter digests, predictions and the training record."""
    qu, qi = query_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pred = model.predict(qu, qi)
    history = [{k: v for k, v in h.items() if k not in ("seconds", "updates_per_sec")}
               for h in model.history_]
    return {
        "digests": {name: _digest(getattr(model, name)) for name in
                    ("user_factors_", "item_factors_", "user_bias_", "item_bias_")},
        "global_mean": model.global_mean_, "rating_range": list(model.rating_range_),
        "best_epoch": model.best_epoch_, "n_epochs": model.n_epochs_,
        "history": history, "predictions": pred,
    }


def main():
    sys.path.insert(0, os.getcwd())
    import mfcore
    from mfcore import simd
    before = simd.current()
    for path in simd.supported():
        simd.select(path)
        arrays, meta = {}, {}
        for name, make in cases().items():
            rec = record(make(1))
            arrays[name] = rec.pop("predictions")
            meta[name] = rec
        arrays["meta"] = np.str_(json.dumps(meta))
        np.savez_compressed(os.path.join(HERE, f"sgd_reference_{path}.npz"), **arrays)
        print(f"wrote {len(meta)} cases for SIMD path {path}")
    simd.select(before)
    if "--v1" not in sys.argv[1:]:
        return
    u, i, r = planted(n_users=30, n_items=20, density=0.5)
    model = mfcore.Model(k=4, epochs=3, seed=1).fit(np.array([f"u{x}" for x in u]), i, r)
    model.save(os.path.join(HERE, "model_format_v1.mfz"))
    qu, qi = np.array([f"u{x}" for x in range(30)]), np.arange(30) % 20
    np.save(os.path.join(HERE, "model_format_v1_predictions.npy"), model.predict(qu, qi))
    print("wrote model_format_v1.mfz")


if __name__ == "__main__":
    main()
