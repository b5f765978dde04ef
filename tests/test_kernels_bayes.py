"""The Gibbs sampler kernel (``mfcore._kernels.bayes``): its random numbers, one sweep
against a NumPy reference, thread-count independence, a planted model, bad input."""
import statistics

import numpy as np
import pytest

import bayes_harness as proto
from mfcore._kernels import bayes

STREAMS = bayes.STREAMS
PRIOR = dict(alpha_0=1.0, beta_0=1.0, mu_0=0.0, gamma_0=1.0, alpha_lambda=1.0, beta_lambda=1.0)


# --- random numbers ----------------------------------------------------------------------

@pytest.mark.parametrize("key, counter, want", [
    # Random123's known-answer vectors for Philox4x64-10
    ((0, 0), (0, 0, 0, 0),
     (0x16554d9eca36314c, 0xdb20fe9d672d0fdc, 0xd7e772cee186176b, 0x7e68b68aec7ba23b)),
    ((2**64 - 1,) * 2, (2**64 - 1,) * 4,
     (0x87b092c3013fe90b, 0x438c3c67be8d0224, 0x9cc7d7c69cd777b6, 0xa09caebf594f0ba0)),
])
def test_philox_known_answers(key, counter, want):
    assert bayes.philox_block(*key, *counter) == want


def test_philox_matches_numpy():
    rng = np.random.default_rng(5)
    for _ in range(20):
        key = rng.integers(0, 2**63, 2, dtype=np.uint64)
        ctr = rng.integers(1, 2**63, 4, dtype=np.uint64)
        start = ctr.copy()
        start[0] -= np.uint64(1)  # numpy's Philox increments its counter before a block
        want = np.random.Philox(key=key, counter=start).random_raw(4)
        got = bayes.philox_block(int(key[0]), int(key[1]), *(int(c) for c in ctr))
        assert got == tuple(int(w) for w in want)


def _draw(kind, n=1000, seed=7, stream=STREAMS["user"], sweep=3, coord=2, draw=0, shape=2.5,
          first_row=0):
    out = np.empty(n)
    bayes.draws(kind, seed, stream, sweep, coord, out, shape=shape, draw=draw,
                first_row=first_row)
    return out


@pytest.mark.parametrize("kind", ["uniform", "normal", "gamma"])
def test_same_key_same_numbers_and_each_word_matters(kind):
    base = _draw(kind)
    np.testing.assert_array_equal(base, _draw(kind))
    # a row's draw depends on its own words only, not on how many rows are drawn with it
    np.testing.assert_array_equal(base[500:], _draw(kind, n=500, first_row=500))
    assert len(np.unique(base)) == len(base)
    changed = [dict(seed=8), dict(stream=STREAMS["item"]), dict(sweep=4), dict(coord=3),
               dict(first_row=1)]
    if kind != "gamma":  # Gamma draws own every draw word (one per attempt)
        changed.append(dict(draw=1))
    for words in changed:
        other = _draw(kind, **words)
        assert np.mean(other == base) < 0.01, words


def test_normal_is_the_quantile_of_the_uniform():
    # the sampler's normal for a key is the standard normal quantile (Wichura's AS 241) of
    # the uniform for that key; the standard library implements the same algorithm
    inv_cdf = statistics.NormalDist().inv_cdf
    u, z = _draw("uniform", 2000), _draw("normal", 2000)
    np.testing.assert_allclose(z, [inv_cdf(p) for p in u], rtol=1e-14, atol=1e-15)
    # each branch: the centre, the tails, the far tails (r > 5), the extreme uniforms
    for p in (2.0**-54, 1e-20, 1e-10, 0.02, 0.3, 0.5, 0.9, 0.999, 1 - 2.0**-53):
        assert bayes.normal_quantile(p) == pytest.approx(inv_cdf(p), rel=1e-14, abs=1e-15)


def test_a_rows_batch_of_normals_is_the_scalar_quantile_bit_for_bit():
    # the rows' batches run the central branch four lanes at a time (AVX, where the CPU has
    # it), the tails one by one: every length (full registers and the remainder), every branch
    u = np.concatenate([_draw("uniform", 3000), [2.0**-54, 1e-20, 0.0749, 0.075, 0.0751,
                                                 0.5, 0.9249, 0.925, 0.9251, 1 - 2.0**-53]])
    for n in (0, 1, 3, 4, 5, 8, 9, len(u)):
        for start in (0, 7):
            p = np.ascontiguousarray(u[start:start + n])
            out = np.full(len(p), np.nan)
            bayes.normal_quantiles(p, out)
            want = np.array([bayes.normal_quantile(x) for x in p])
            assert out.tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="p must be in"):
        bayes.normal_quantiles(np.array([0.5, 1.0]), np.empty(2))


def test_uniform_normal_gamma_moments():
    # the numbers are fixed by their keys, so these bounds (about 6 standard errors) either
    # always hold or never do
    n = 10**5
    u = _draw("uniform", n)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 6 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 0.003
    z = _draw("normal", n)
    assert abs(z.mean()) < 6 / np.sqrt(n)
    assert abs(z.var() - 1) < 6 * np.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 6 * np.sqrt(15 / n)
    assert abs(np.mean(np.abs(z) < 1.959964) - 0.95) < 6 * np.sqrt(0.95 * 0.05 / n)
    for shape in (0.4, 2.5, 50000.5):
        g = _draw("gamma", n, shape=shape)
        assert g.min() > 0
        assert abs(g.mean() - shape) < 6 * np.sqrt(shape / n)
        assert abs(g.var() / shape - 1) < 6 * np.sqrt((2 + 6 / shape) / n)


# --- one sweep against a NumPy reference --------------------------------------------------

def tiny_layout(seed=1, n_users=9, n_items=6, k=3, n=30):
    """A tiny problem with a user and an item without ratings (drawn from their priors)."""
    rng = np.random.default_rng(seed)
    cells = rng.choice((n_users - 1) * (n_items - 1), n, replace=False)
    users, items = cells // (n_items - 1), cells % (n_items - 1)
    ratings = rng.integers(1, 6, n).astype(float)
    state = proto.GibbsState(users, items, ratings, n_users, n_items, k, seed=seed,
                             init_std=0.4)
    state.user_bias[:] = rng.normal(0, 0.2, n_users)
    state.item_bias[:] = rng.normal(0, 0.2, n_items)
    state.residual = state.ratings - state.predict(*state.item_order_pairs())
    return state


def _one(kind, stream, sweep, coord, seed, row=0, shape=1.0):
    out = np.empty(1)
    bayes.draws(kind, seed, STREAMS[stream], sweep, coord, out, shape=shape, first_row=row)
    return out[0]


def reference_sweep(st, sweep):
    """The documented sweep, coordinate by coordinate in NumPy, with the kernel's draws."""
    seed, k, n = st.seed, st.user_factors.shape[1], len(st.residual)
    e = st.residual[st.user_pos]  # user-CSR order: position t is the rating at user_pos[t]
    sse = float(np.sum(e * e))
    alpha = (_one("gamma", "noise", sweep, 0, seed, shape=0.5 * (1 + n))
             / (0.5 * (1 + sse)))
    users_of = np.repeat(np.arange(len(st.user_ptr) - 1), np.diff(st.user_ptr))
    assert np.array_equal(users_of[st.item_pos], st.item_users)
    sides = [("user", st.user_bias, st.user_factors, st.user_hyper, st.user_ptr,
              np.arange(n), st.user_items, st.item_factors),
             ("item", st.item_bias, st.item_factors, st.item_hyper, st.item_ptr,
              st.item_pos, st.item_users, st.user_factors)]
    for name, bias, W, hyper, *_ in sides:
        for c in range(k + 1):
            x = bias if c == 0 else W[:, c - 1]
            J, xbar = len(x), x.mean()
            rate = 0.5 * (1 + np.sum((x - xbar) ** 2) + J * xbar**2 / (1 + J))
            lam = _one("gamma", name + "_hyper", sweep, c, seed, shape=0.5 * (1 + J)) / rate
            mean = (x.sum() / (1 + J)
                    + _one("normal", name + "_hyper", sweep, c, seed, row=1)
                    / np.sqrt((1 + J) * lam))
            hyper[:, c] = mean, lam
    for name, bias, W, hyper, ptr, pos, other_rows, other in sides:
        for r in range(len(ptr) - 1):
            where = pos[ptr[r]:ptr[r + 1]]
            for c in range(k + 1):
                h = np.ones(len(where)) if c == 0 else other[other_rows[ptr[r]:ptr[r + 1]], c - 1]
                theta = bias[r] if c == 0 else W[r, c - 1]
                prec = alpha * np.sum(h * h) + hyper[1, c]
                mean = (alpha * np.sum(h * (e[where] + theta * h))
                        + hyper[1, c] * hyper[0, c]) / prec
                new = mean + _one("normal", name, sweep, c, seed, row=r) / np.sqrt(prec)
                e[where] -= (new - theta) * h
                if c == 0:
                    bias[r] = new
                else:
                    W[r, c - 1] = new
    st.residual[:] = e[st.item_pos]
    return alpha, sse


def _arrays(st):
    """The state after a sweep (``user_residual`` is work space)."""
    return [st.residual, st.user_factors, st.item_factors, st.user_bias, st.item_bias,
            st.user_hyper, st.item_hyper]


def test_sweeps_match_numpy_reference():
    st, ref = tiny_layout(), tiny_layout()
    assert np.diff(st.user_ptr)[-1] == 0 and np.diff(st.item_ptr)[-1] == 0
    for sweep in range(3):
        alpha, sse = st.sweep(n_threads=2)
        want_alpha, want_sse = reference_sweep(ref, sweep)
        ref.sweeps += 1
        assert alpha == pytest.approx(want_alpha, rel=1e-9)
        assert sse == pytest.approx(want_sse, rel=1e-9)
        for got, want in zip(_arrays(st), _arrays(ref)):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    # the residuals stayed those of the parameters
    np.testing.assert_allclose(st.residual, st.ratings - st.predict(*st.item_order_pairs()),
                               atol=1e-10)


def test_bit_identical_for_any_thread_count(make_planted):
    users, items, ratings = make_planted(n_users=300, n_items=200, density=0.3, seed=4)
    results = []
    for n_threads in (1, 2, 3, 8):  # 8: more threads than cores and than some tasks
        st = proto.GibbsState(users, items, ratings, 300, 200, k=5, seed=11)
        traces = [st.sweep(n_threads) for _ in range(3)]
        results.append((traces, [a.copy() for a in _arrays(st)]))
    for traces, arrays in results[1:]:
        assert traces == results[0][0]
        for got, want in zip(arrays, results[0][1]):
            assert got.tobytes() == want.tobytes()


def test_timing_reports_each_threads_steps_and_changes_nothing(make_planted):
    users, items, ratings = make_planted(n_users=200, n_items=150, density=0.3, seed=6)
    plain = proto.GibbsState(users, items, ratings, 200, 150, k=6, seed=3)
    timed = proto.GibbsState(users, items, ratings, 200, 150, k=6, seed=3)
    names = list(bayes.TIMING)
    for _ in range(2):
        want = plain.sweep(n_threads=2)
        timing = np.full((2, len(names)), np.nan)
        got = bayes.gibbs_sweep(
            timed.user_ptr, timed.user_items, timed.user_pos, timed.item_ptr,
            timed.item_users, timed.item_pos, timed.residual, timed.user_residual,
            timed.user_factors, timed.item_factors, timed.user_bias, timed.item_bias,
            timed.user_hyper, timed.item_hyper, timed.seed, timed.sweeps, 2, timing=timing)
        timed.sweeps += 1
        assert got == want and timed.residual.tobytes() == plain.residual.tobytes()
        assert np.isfinite(timing).all() and (timing >= 0).all()
        for step in ("hyper", "users", "items"):  # a thread's tasks fit in its step
            assert (timing[:, names.index(step + " busy")]
                    <= timing[:, names.index(step + " wall")] + 1e-6).all()
        steps = sum(timing[0, names.index(s + " wall")] for s in ("hyper", "users", "items"))
        assert timing[0, names.index("call")] >= steps > 0
    with pytest.raises(ValueError, match=r"timing must be a float64 array of shape \(2, 11\)"):
        bayes.gibbs_sweep(
            timed.user_ptr, timed.user_items, timed.user_pos, timed.item_ptr,
            timed.item_users, timed.item_pos, timed.residual, timed.user_residual,
            timed.user_factors, timed.item_factors, timed.user_bias, timed.item_bias,
            timed.user_hyper, timed.item_hyper, timed.seed, timed.sweeps, 2,
            timing=np.zeros((1, len(names))))


def test_seed_changes_the_chain(make_planted):
    users, items, ratings = make_planted(n_users=50, n_items=40, seed=2)
    a = proto.GibbsState(users, items, ratings, 50, 40, k=3, seed=1)
    b = proto.GibbsState(users, items, ratings, 50, 40, k=3, seed=1)
    b.seed = 2
    a.sweep()
    b.sweep()
    assert not np.allclose(a.user_factors, b.user_factors)


# --- a planted model ----------------------------------------------------------------------

def test_recovers_planted_low_rank_model(make_planted, train_test):
    noise = 0.3
    users, items, ratings = make_planted(n_users=300, n_items=200, rank=3, density=0.4,
                                         noise=noise, seed=3)
    (tu, ti, tr), (qu, qi, qr) = train_test(users, items, ratings, seed=1)
    out = proto.fit_predict(tu, ti, tr, qu, qi, 300, 200, k=5, n_sweeps=80, burn_in=30,
                            seed=0, n_threads=1, lo=-np.inf, hi=np.inf)
    rmse = np.sqrt(np.mean((out["mean"] - qr) ** 2))
    assert rmse < 1.12 * noise  # the planted model itself scores `noise`
    assert 1 / np.sqrt(out["alpha"][0, -20:].mean()) == pytest.approx(noise, rel=0.1)
    assert 0.85 <= proto.coverage(out["raw_mean"], out["std"], qr) <= 0.95
    # the posterior mean beats a biases-only fit by far
    assert rmse < 0.5 * np.std(qr)


# --- bad input ----------------------------------------------------------------------------

def _sweep_args(st):
    return dict(user_ptr=st.user_ptr, user_items=st.user_items, user_pos=st.user_pos,
                item_ptr=st.item_ptr, item_users=st.item_users, item_pos=st.item_pos,
                residual=st.residual, user_residual=st.user_residual,
                user_factors=st.user_factors, item_factors=st.item_factors,
                user_bias=st.user_bias, item_bias=st.item_bias, user_hyper=st.user_hyper,
                item_hyper=st.item_hyper, seed=0, sweep=0, n_threads=1)


@pytest.mark.parametrize("change, match", [
    (dict(item_factors=np.zeros((6, 4))), "differ in k"),
    (dict(user_bias=np.zeros(8)), "biases of 8 users"),
    (dict(user_hyper=np.zeros((2, 3))), r"user_hyper has shape \(2, 3\)"),
    (dict(item_hyper=np.zeros((3, 4))), r"item_hyper has shape \(3, 4\)"),
    (dict(residual=np.zeros(29)), "for 29 residuals"),
    (dict(user_residual=np.zeros(31)), "and 31 entries for 30 residuals"),
    (dict(user_ptr=np.zeros(9, np.int64)), "user_ptr has 9 entries, expected 10"),
    (dict(item_ptr=np.zeros(7, np.int64)), "item_ptr must run from 0 to 30"),
    (dict(n_threads=0), "n_threads must be >= 1"),
    (dict(beta_0=0.0), "beta_0 must be > 0"),
    (dict(alpha_lambda=-1.0), "alpha_lambda must be > 0"),
])
def test_bad_shapes_raise(change, match):
    args = _sweep_args(tiny_layout())
    args.update(change)
    with pytest.raises(ValueError, match=match):
        bayes.gibbs_sweep(**args)


def test_decreasing_offsets_raise():
    args = _sweep_args(tiny_layout())
    ptr = args["user_ptr"].copy()
    ptr[3], ptr[4] = ptr[4] + 1, ptr[3]
    args["user_ptr"] = ptr
    with pytest.raises(ValueError, match="user_ptr decreases at row"):
        bayes.gibbs_sweep(**args)


def test_check_layout_finds_inconsistent_layouts():
    st = tiny_layout()
    parts = [st.user_ptr, st.user_items, st.user_pos, st.item_ptr, st.item_users,
             st.item_pos]
    bayes.check_layout(*parts)

    def broken(index, change):
        arrays = [a.copy() for a in parts]
        change(arrays[index])
        return arrays
    swap = lambda a: a.__setitem__([0, 1], a[[1, 0]])  # noqa: E731
    with pytest.raises(ValueError, match="does not match user-CSR position"):
        bayes.check_layout(*broken(5, swap))
    with pytest.raises(ValueError, match="out of range or repeated"):
        bayes.check_layout(*broken(5, lambda a: a.__setitem__(1, a[0])))
    with pytest.raises(ValueError, match=r"user_items\[2\] = 6 is not an item row"):
        bayes.check_layout(*broken(1, lambda a: a.__setitem__(2, 6)))
    with pytest.raises(ValueError, match=r"user_pos\[\d+\] = \d+, but that rating is at"):
        bayes.check_layout(*broken(2, swap))
    with pytest.raises(ValueError, match="differ in length"):
        bayes.check_layout(*parts[:5], st.item_pos[:-1])


def test_draws_reject_bad_kind_and_shape():
    with pytest.raises(ValueError, match="kind must be"):
        bayes.draws("cauchy", 0, 1, 0, 0, np.empty(3))
    with pytest.raises(ValueError, match="Gamma shape must be > 0"):
        bayes.draws("gamma", 0, 1, 0, 0, np.empty(3), shape=0.0)


def test_the_sweeps_parts_give_the_sweep_bit_for_bit(make_planted):
    """``chunk_sse``, ``draw_hyper_and_noise`` and ``gibbs_rows`` on bands of rows (what
    ``mfcore.dask`` runs, spread over processes) give ``gibbs_sweep``'s state exactly, the
    users gathering their residuals in the kernel (``pos``, ``source``), the items adding
    the next sweep's chunk sums of squares (``chunk_sums``) as ``chunk_sse`` does."""
    users, items, ratings = make_planted(n_users=120, n_items=90, density=0.8, seed=3)
    whole = proto.GibbsState(users, items, ratings, 120, 90, k=4, seed=5)
    parts = proto.GibbsState(users, items, ratings, 120, 90, k=4, seed=5)
    assert len(parts.residual) > 2 * bayes.CHUNK  # several chunks of the sum of squares
    for sweep in range(3):
        alpha, sse = whole.sweep(n_threads=2)
        got_sse = 0.0
        for value in bayes.chunk_sse(parts.residual):  # chunk sums added in chunk order
            got_sse += value
        got_alpha = bayes.draw_hyper_and_noise(
            parts.user_factors, parts.item_factors, parts.user_bias, parts.item_bias,
            parts.user_hyper, parts.item_hyper, len(parts.residual), got_sse, parts.seed,
            sweep, 2, **PRIOR)
        user_residual = np.empty_like(parts.residual)
        for lo, hi in ((0, 50), (50, 120)):  # two bands of users, then of items
            ptr = parts.user_ptr[lo:hi + 1] - parts.user_ptr[lo]
            span = slice(parts.user_ptr[lo], parts.user_ptr[hi])
            e = np.full(span.stop - span.start, np.nan)  # the kernel gathers them
            bayes.gibbs_rows(ptr, parts.user_items[span], e, parts.user_factors[lo:hi],
                             parts.user_bias[lo:hi], parts.item_factors, parts.user_hyper,
                             got_alpha, parts.seed, "user", sweep, lo, 2,
                             pos=parts.user_pos[span], source=parts.residual)
            user_residual[span] = e
        parts.residual = user_residual[parts.item_pos]
        C, fused = bayes.CHUNK, {}
        for lo, hi in ((0, 30), (30, 90)):
            ptr = parts.item_ptr[lo:hi + 1] - parts.item_ptr[lo]
            span = slice(parts.item_ptr[lo], parts.item_ptr[hi])
            e = parts.residual[span].copy()
            first = -(-span.start // C) * C  # the band's whole chunks: their next sums
            sums = np.full(max(span.stop // C - first // C, 0), np.nan)
            bayes.gibbs_rows(ptr, parts.item_users[span], e, parts.item_factors[lo:hi],
                             parts.item_bias[lo:hi], parts.user_factors, parts.item_hyper,
                             got_alpha, parts.seed, "item", sweep, lo, 1,
                             chunk_sums=sums, chunk_start=first - span.start)
            parts.residual[span] = e
            fused.update(zip(range(first // C, first // C + len(sums)), sums))
        assert (got_alpha, got_sse) == (alpha, sse)
        assert len(fused) >= 1
        for chunk, value in fused.items():
            assert value == bayes.chunk_sse(parts.residual)[chunk]
        for got, want in zip(_arrays(parts), _arrays(whole)):
            assert got.tobytes() == want.tobytes()


def test_gibbs_rows_rejects_what_does_not_fit_its_rows():
    ptr, cols = np.array([0, 2, 3], dtype=np.int64), np.array([0, 1, 0], dtype=np.int32)
    e, P, b = np.zeros(3), np.zeros((2, 2)), np.zeros(2)
    other, hyper = np.zeros((2, 2)), np.ones((2, 3))

    def rows(**given):
        bayes.gibbs_rows(ptr, cols, e, P, b, other, hyper, 1.0, 0, "user", 0, 0, 1, **given)

    rows(pos=np.array([2, 1, 0]), source=np.ones(3), chunk_sums=np.empty(0))  # accepted
    with pytest.raises(ValueError, match="pos and source go together"):
        rows(pos=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"one position a residual \(3\)"):
        rows(pos=np.array([0, 1]), source=np.ones(3))
    with pytest.raises(ValueError, match="1 chunks from 0 pass the 3 residuals"):
        rows(chunk_sums=np.empty(1))
    with pytest.raises(ValueError, match="side must be"):
        bayes.gibbs_rows(ptr, cols, e, P, b, other, hyper, 1.0, 0, "both", 0, 0, 1)
