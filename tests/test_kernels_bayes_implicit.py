"""The Gibbs sweep with implicit terms (SVD++ and its flipped item side): one sweep against a
NumPy reference that recomputes every full conditional from the model's definition
(residuals and implicit terms rebuilt from scratch), thread-count independence, bad input."""
import numpy as np
import pytest

from mfcore._kernels import bayes
from mfcore.estimators.bayes import implicit_layout, sampler_layout

STREAMS = bayes.STREAMS


def _one(kind, stream, sweep, coord, seed, row=0, shape=1.0):
    out = np.empty(1)
    bayes.draws(kind, seed, STREAMS[stream], sweep, coord, out, shape=shape, first_row=row)
    return out[0]


class ImplicitState:
    """Ratings (u, i, r), implicit pairs and every parameter; ``sweep`` runs the kernel."""

    def __init__(self, sides=("user", "item"), seed=3, n_users=8, n_items=7, k=3, n=28):
        rng = np.random.default_rng(seed)
        # the last user and the last item have no ratings; user 6 has only implicit pairs
        cells = rng.choice((n_users - 2) * (n_items - 1), n, replace=False)
        self.u, self.i = cells // (n_items - 1), cells % (n_items - 1)
        self.r = rng.integers(1, 6, n).astype(float)
        extra_u = np.array([0, 0, 1, 6, 6, 3])
        extra_i = np.array([6, 2, 6, 0, 1, 4])
        self.imp_u, self.imp_i = np.r_[self.u, extra_u], np.r_[self.i, extra_i]
        self.n_users, self.n_items, self.k, self.seed, self.mu = n_users, n_items, k, seed, 3.0
        (order, self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
         self.item_pos) = sampler_layout(self.u, self.i, n_users, n_items)
        self.order = order
        self.ptrs = implicit_layout(self.imp_u, self.imp_i, n_users, n_items)
        self.P, self.Q = rng.normal(0, 0.4, (n_users, k)), rng.normal(0, 0.4, (n_items, k))
        self.bu, self.bi = rng.normal(0, 0.2, n_users), rng.normal(0, 0.2, n_items)
        self.Y = rng.normal(0, 0.4, (n_items, k)) if "user" in sides else None
        self.Z = rng.normal(0, 0.4, (n_users, k)) if "item" in sides else None
        self.user_hyper, self.item_hyper = np.zeros((2, k + 1)), np.zeros((2, k + 1))
        self.y_hyper = None if self.Y is None else np.zeros((2, k))
        self.z_hyper = None if self.Z is None else np.zeros((2, k))
        self.ybar, self.zbar = self.implicit_terms()
        self.Pe, self.Qe = self.P + self.ybar, self.Q + self.zbar
        by_item = order[self.item_pos]
        self.residual = self.r[by_item] - self.predict()[by_item]
        self.user_residual = np.empty_like(self.residual)
        self.sweeps = 0

    def implicit_terms(self):
        """(ybar, zbar) from the definition: |N|^-1/2 times the sum over N."""
        ybar, zbar = np.zeros((self.n_users, self.k)), np.zeros((self.n_items, self.k))
        for u in range(self.n_users):
            N = self.imp_i[self.imp_u == u]
            if self.Y is not None and len(N):
                ybar[u] = self.Y[np.unique(N)].sum(axis=0) / np.sqrt(len(np.unique(N)))
        for i in range(self.n_items):
            N = self.imp_u[self.imp_i == i]
            if self.Z is not None and len(N):
                zbar[i] = self.Z[np.unique(N)].sum(axis=0) / np.sqrt(len(np.unique(N)))
        return ybar, zbar

    def predict(self):
        """Predictions of the ratings (in their given order) from the parameters."""
        ybar, zbar = self.implicit_terms()
        Pe, Qe = self.P + ybar, self.Q + zbar
        return (self.mu + self.bu[self.u] + self.bi[self.i]
                + np.einsum("nk,nk->n", Pe[self.u], Qe[self.i]))

    def sweep(self, n_threads=1):
        out = bayes.gibbs_sweep(
            self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
            self.item_pos, self.residual, self.user_residual, self.P, self.Q, self.bu, self.bi,
            self.user_hyper, self.item_hyper, self.seed, self.sweeps, n_threads,
            implicit=bayes.ImplicitTerms(*self.ptrs, y=self.Y, z=self.Z, ybar=self.ybar,
                                         zbar=self.zbar, user_effective=self.Pe,
                                         item_effective=self.Qe, y_hyper=self.y_hyper,
                                         z_hyper=self.z_hyper))
        self.sweeps += 1
        return out

    def arrays(self):
        return [a for a in (self.P, self.Q, self.bu, self.bi, self.Y, self.Z, self.ybar,
                            self.zbar, self.Pe, self.Qe, self.residual, self.user_hyper,
                            self.item_hyper, self.y_hyper, self.z_hyper) if a is not None]


def _draw_group(x, stream, sweep, coord, seed):
    """(mean, precision) of one group from its Normal-Gamma posterior (the kernel's draws)."""
    J, xbar = len(x), x.mean()
    rate = 0.5 * (1 + np.sum((x - xbar) ** 2) + J * xbar**2 / (1 + J))
    lam = _one("gamma", stream, sweep, coord, seed, shape=0.5 * (1 + J)) / rate
    return x.sum() / (1 + J) + _one("normal", stream, sweep, coord, seed, row=1) / np.sqrt(
        (1 + J) * lam), lam


def reference_sweep(st, sweep):
    """The documented sweep, one parameter at a time, each full conditional computed from
    the model's definition (residuals of all ratings rebuilt from the parameters, the
    implicit terms summed afresh). The rows draw their effective vectors pe_u = p_u +
    ybar_u (prior N(m + ybar_u, 1/lambda)); then, the effective vectors held fixed, y
    from the prior of pe alone (p_u = pe_u - ybar_u moves with y); likewise items and z."""
    seed, k = st.seed, st.k
    e = st.r - st.predict()
    sse = float(np.sum(e * e))
    alpha = _one("gamma", "noise", sweep, 0, seed, shape=0.5 * (1 + len(e))) / (0.5 * (1 + sse))
    for c in range(k + 1):
        st.user_hyper[:, c] = _draw_group(st.bu if c == 0 else st.P[:, c - 1], "user_hyper",
                                          sweep, c, seed)
        st.item_hyper[:, c] = _draw_group(st.bi if c == 0 else st.Q[:, c - 1], "item_hyper",
                                          sweep, c, seed)
    for f in range(k):
        if st.Y is not None:
            st.y_hyper[:, f] = _draw_group(st.Y[:, f], "y_hyper", sweep, f, seed)
        if st.Z is not None:
            st.z_hyper[:, f] = _draw_group(st.Z[:, f], "z_hyper", sweep, f, seed)

    def normal(prec, mean_num, stream, row, coord):
        return mean_num / prec + _one("normal", stream, sweep, coord, seed, row=row) / np.sqrt(prec)

    for side in ("user", "item"):
        rows, bias, W = (st.u, st.bu, st.P) if side == "user" else (st.i, st.bi, st.Q)
        hyper = st.user_hyper if side == "user" else st.item_hyper
        for r in range(len(bias)):
            for c in range(k + 1):
                ybar, zbar = st.implicit_terms()
                bar = ybar if side == "user" else zbar
                Pe, Qe = st.P + ybar, st.Q + zbar
                other = Qe[st.i] if side == "user" else Pe[st.u]
                h = (rows == r) * (1.0 if c == 0 else other[:, max(c - 1, 0)])
                theta = bias[r] if c == 0 else W[r, c - 1] + bar[r, c - 1]  # effective
                prior_mean = hyper[0, c] + (0.0 if c == 0 else bar[r, c - 1])
                e = st.r - st.predict()
                prec = alpha * np.sum(h * h) + hyper[1, c]
                new = normal(prec, alpha * np.sum(h * (e + theta * h)) + hyper[1, c] * prior_mean,
                             side, r, c)
                if c == 0:
                    bias[r] = new
                else:
                    W[r, c - 1] = new - bar[r, c - 1]
        X = st.Y if side == "user" else st.Z
        if X is None:
            continue
        xh = st.y_hyper if side == "user" else st.z_hyper
        ids, imp_own, imp_other = ((st.imp_u, st.imp_u, st.imp_i) if side == "user"
                                   else (st.imp_i, st.imp_i, st.imp_u))
        n_own = len(bias)
        ybar, zbar = st.implicit_terms()
        effective = (st.P + ybar) if side == "user" else (st.Q + zbar)  # held fixed
        for f in range(k):
            for j in range(len(X)):
                bar = st.implicit_terms()[0 if side == "user" else 1]
                counts = np.array([len(np.unique(imp_other[imp_own == v])) for v in range(n_own)])
                holds = np.array([np.any((imp_own == v) & (imp_other == j)) for v in range(n_own)])
                h = holds / np.sqrt(np.maximum(counts, 1))
                res = effective[:, f] - hyper[0, 1 + f] - bar[:, f]
                prec = hyper[1, 1 + f] * np.sum(h * h) + xh[1, f]
                X[j, f] = normal(prec, hyper[1, 1 + f] * np.sum(h * (res + X[j, f] * h))
                                 + xh[1, f] * xh[0, f], "y" if side == "user" else "z", j, f)
                bar = st.implicit_terms()[0 if side == "user" else 1]
                W[:, f] = effective[:, f] - bar[:, f]
    return alpha, sse


@pytest.mark.parametrize("sides, k", [(("user", "item"), 6), (("user", "item"), 8),
                                      (("user",), 3), (("item",), 5)])
def test_implicit_sweeps_match_the_definition(sides, k):
    # k = 3, 5, 6, 8: one partial block of columns, a full one and a partial one, two full
    st, ref = ImplicitState(sides, k=k), ImplicitState(sides, k=k)
    for sweep in range(2):
        alpha, sse = st.sweep(n_threads=2)
        want_alpha, want_sse = reference_sweep(ref, sweep)
        assert alpha == pytest.approx(want_alpha, rel=1e-9)
        assert sse == pytest.approx(want_sse, rel=1e-9)
        for name, got, want in (("P", st.P, ref.P), ("Q", st.Q, ref.Q), ("bu", st.bu, ref.bu),
                                ("bi", st.bi, ref.bi), ("Y", st.Y, ref.Y), ("Z", st.Z, ref.Z),
                                ("y_hyper", st.y_hyper, ref.y_hyper),
                                ("z_hyper", st.z_hyper, ref.z_hyper)):
            if want is not None:
                np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=name)
        # the kernel's cached state stayed that of its parameters
        ybar, zbar = st.implicit_terms()
        np.testing.assert_allclose(st.ybar, ybar, atol=1e-11)
        np.testing.assert_allclose(st.zbar, zbar, atol=1e-11)
        np.testing.assert_allclose(st.Pe, st.P + ybar, atol=1e-12)
        np.testing.assert_allclose(st.Qe, st.Q + zbar, atol=1e-12)
        by_item = st.order[st.item_pos]
        np.testing.assert_allclose(st.residual, (st.r - st.predict())[by_item], atol=1e-10)
        if "user" not in sides:
            assert not st.ybar.any()
        if "item" not in sides:
            assert not st.zbar.any()


def test_implicit_sweeps_are_bit_identical_for_any_thread_count():
    results = []
    for n_threads in (1, 2, 3, 2, 1):
        st = ImplicitState(seed=5, n_users=60, n_items=40, k=6, n=700)
        traces = [st.sweep(n_threads) for _ in range(3)]
        results.append((traces, [a.copy() for a in st.arrays()]))
    for traces, arrays in results[1:]:
        assert traces == results[0][0]
        for got, want in zip(arrays, results[0][1]):
            assert np.array_equal(got, want)


def test_implicit_means_is_the_scaled_sum():
    ptr = np.array([0, 2, 2, 5], np.int64)
    members = np.array([1, 3, 0, 1, 2], np.int32)
    vectors = np.arange(8.0).reshape(4, 2)
    out = np.full((3, 2), np.nan)
    bayes.implicit_means(ptr, members, vectors, out)
    np.testing.assert_allclose(out, [(vectors[1] + vectors[3]) / np.sqrt(2), [0, 0],
                                     vectors[:3].sum(axis=0) / np.sqrt(3)])
    with pytest.raises(ValueError, match=r"members\[1\] = 4 is not a row"):
        bayes.implicit_means(ptr, np.array([1, 4, 0, 1, 2], np.int32), vectors, out)


@pytest.mark.parametrize("change, match", [
    (dict(item_users=None), "need user_ptr, user_items, item_ptr and item_users"),
    (dict(ybar=np.zeros((3, 3))), r"ybar has shape \(3, 3\), expected \(8, 3\)"),
    (dict(y_hyper=np.zeros((2, 4))), r"y_hyper has shape \(2, 4\), expected \(2, 3\)"),
    (dict(user_ptr=np.zeros(9, np.int64)), "implicit user_ptr must run from 0"),
])
def test_bad_implicit_state_raises(change, match):
    st = ImplicitState()
    kwargs = dict(user_ptr=st.ptrs[0], user_items=st.ptrs[1], item_ptr=st.ptrs[2],
                  item_users=st.ptrs[3], y=st.Y, z=st.Z, ybar=st.ybar, zbar=st.zbar,
                  user_effective=st.Pe, item_effective=st.Qe, y_hyper=st.y_hyper,
                  z_hyper=st.z_hyper)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        bayes.gibbs_sweep(st.user_ptr, st.user_items, st.user_pos, st.item_ptr, st.item_users,
                          st.item_pos, st.residual, st.user_residual, st.P, st.Q, st.bu, st.bi,
                          st.user_hyper, st.item_hyper, st.seed, 0, 1,
                          implicit=bayes.ImplicitTerms(**kwargs))


def test_implicit_members_out_of_range_raise():
    st = ImplicitState()
    items = st.ptrs[1].copy()
    items[3] = st.n_items
    with pytest.raises(ValueError, match="implicit pair 3: item 7 or user"):
        bayes.gibbs_sweep(st.user_ptr, st.user_items, st.user_pos, st.item_ptr, st.item_users,
                          st.item_pos, st.residual, st.user_residual, st.P, st.Q, st.bu, st.bi,
                          st.user_hyper, st.item_hyper, st.seed, 0, 1,
                          implicit=bayes.ImplicitTerms(
                              st.ptrs[0], items, st.ptrs[2], st.ptrs[3], y=st.Y, z=st.Z,
                              ybar=st.ybar, zbar=st.zbar, user_effective=st.Pe,
                              item_effective=st.Qe, y_hyper=st.y_hyper, z_hyper=st.z_hyper))
