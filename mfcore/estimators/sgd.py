"""SGD, the estimator ``mfcore.SGD`` (alias ``mfcore.Model``): parameters, layout, one epoch.

The shared loop (history, divergence checks, early stopping) is
``mfcore.estimators.driver``; this module owns how an SGD epoch visits the ratings.

Layout: users and items are split into ``grid`` contiguous groups each
(balanced by rating count), which cuts the rating matrix into ``grid x grid``
blocks. The ratings are copied once into packed (user, item, rating) records
grouped by block (12 bytes a rating for float32, 16 for float64), in a fixed
random order within each block; they are never modified afterwards.

Epoch: ``grid`` rounds; each round trains ``grid`` blocks that share no user
and no item (a random diagonal of the grid), so threads train them at the same
time without ever writing the same parameters (the FPSGD/DSGD idea). Each
block is visited in runs of 16 consecutive records (near-sequential memory
access) taken in a fresh random order (a permutation the kernel draws into a
small per-thread scratch buffer). All randomness (the rounds and the run
order's seed) is drawn from the caller's numpy Generator and an epoch depends
on those draws alone, not on earlier epochs, so a new trainer (``partial_fit``)
continues exactly where an old one stopped. The grid depends on the data
alone, never on the thread count: a fit is a function of (data,
hyperparameters, seed), bit-identical with 1, 2 or 8 threads.
"""
import math

import numpy as np

from .. import params as p
from .._kernels import sgd as _kernels
from ..data import StreamedRatings
from ..errors import Message, Setting
from .._threads import resolve_n_threads
from .base import (COMMON_PARAMS, EARLY_STOPPING_PARAMS, UNIT_NAMES, Estimator, bias_reg,
                   from_standard, standard_units, standardized, to_standard)
from .driver import Trainer

__all__ = ["SGD", "Model", "SGDTrainer", "SGDEpochs", "choose_grid", "groups_of_counts", "bias_reg",
           "schedule", "layout_blocks"]

#: Record layouts shared with the C kernel (``mf_rec32``/``mf_rec64`` in sgd_simd.h).
RECORD_DTYPES = {
    np.dtype(np.float32): np.dtype([("u", "<i4"), ("i", "<i4"), ("r", "<f4")]),
    np.dtype(np.float64): np.dtype([("u", "<i4"), ("i", "<i4"), ("r", "<f8")]),
}

#: Aim for at least this many ratings a block; the grid never exceeds MAX_GRID (reached at
#: 33.5M ratings). A finer grid was tried for 16 ``mfcore.dask`` workers of 8 threads and
#: rejected: its item groups' traffic and per-round latency grow with the grid faster than
#: its compute shrinks (``benchmarks/dask_cost.py`` prints the written model for both).
MIN_BLOCK = 8192
MAX_GRID = 64
#: Seed of the one-time shuffle of the records within their blocks (part of the layout).
LAYOUT_SEED = 0x6D66636F7265


def on_cache_lines(shape, dtype, line=64):
    """An uninitialized C-contiguous array whose data starts on a ``line``-byte boundary.

    Examples
    --------
    >>> a = on_cache_lines((1000, 64), np.float32)
    >>> a.shape, a.ctypes.data % 64, a.flags.c_contiguous
    ((1000, 64), 0, True)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + line, dtype=np.uint8)
    start = -buf.ctypes.data % line
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def choose_grid(n_ratings, n_users, n_items, asked=None):
    """Groups per side of the block grid: from the data's size alone (not the thread count).

    Enough blocks per round for the threads to balance their load, few enough
    that each block is long compared with the cost of a round's barrier. ``asked``
    (``SGD(block_grid=...)``) replaces the size rule, within 1..min(users, items).
    """
    if asked is not None:
        return max(1, min(int(asked), n_users, n_items))
    g = int(math.sqrt(n_ratings / MIN_BLOCK))
    return max(1, min(g, MAX_GRID, n_users, n_items))


def balanced_groups(index, n, grid):
    """Group (0..grid-1) of each of ``n`` rows: ``grid`` contiguous index ranges of about
    equal rating counts.

    Contiguous, so that two threads never write the same cache line of the
    bias or factor arrays (interleaved rows would share lines: false sharing).
    """
    return groups_of_counts(np.bincount(index, minlength=n), grid)


def groups_of_counts(counts, grid):
    """``balanced_groups`` from the rating count of each row (``mfcore.dask`` has only those)."""
    cum = np.cumsum(counts)
    total = cum[-1] if len(counts) else 0
    # row r goes to the group in which its last rating falls
    group = (cum - 1) * grid // max(total, 1)
    return np.clip(group, 0, grid - 1).astype(np.int32)


def layout_blocks(block, users, items, ratings, n_blocks, n_threads):
    """(records, block offsets, block sizes): the ratings as packed records grouped by
    ``block`` (each rating's block id, ``0 .. n_blocks - 1``), each block in its fixed
    shuffled order (``LAYOUT_SEED``), so that the runs of consecutive records the kernel
    visits are not runs of one user when the input is sorted (as rating files often are).
    The local trainer and ``mfcore.dask``'s shards both lay out their ratings here."""
    sizes = np.bincount(block, minlength=n_blocks)
    block_ptr = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(sizes, out=block_ptr[1:])
    records = np.empty(len(ratings), dtype=RECORD_DTYPES[ratings.dtype])
    _kernels.layout_records(block, users, items, ratings, block_ptr, records.view(np.uint8),
                            LAYOUT_SEED, n_threads)
    return records, block_ptr, sizes


def schedule(grid, block_sizes, rng):
    """One epoch's rounds: ``grid`` random diagonals of the block grid, as block ids (int32).

    Round ``s`` pairs row group ``rows[b]`` with column group
    ``cols[(b + shifts[s]) % grid]``; within a round the largest blocks (``block_sizes``,
    by block id) come first (threads pick them up in that order; the result does not
    depend on it).
    """
    g = grid
    rows, cols, shifts = rng.permutation(g), rng.permutation(g), rng.permutation(g)
    b = np.arange(g)
    blocks = rows[None, :] * g + cols[(b[None, :] + shifts[:, None]) % g]
    by_size = np.argsort(-block_sizes[blocks], axis=1, kind="stable")
    return np.ascontiguousarray(np.take_along_axis(blocks, by_size, axis=1),
                                dtype=np.int32).ravel()


class SGDTrainer:
    """Runs SGD epochs over fixed training ratings (int32 indices, float ratings).

    See the module docstring for the layout and the schedule.
    """

    def __init__(self, users, items, ratings, n_threads, grid=None):
        users = np.ascontiguousarray(users, dtype=np.int32)
        items = np.ascontiguousarray(items, dtype=np.int32)
        ratings = np.ascontiguousarray(ratings)
        if ratings.dtype not in RECORD_DTYPES:
            raise ValueError(f"ratings must be float32 or float64, got {ratings.dtype}")
        if not len(users) == len(items) == len(ratings):
            raise ValueError(f"users, items and ratings differ in length: "
                             f"{len(users)}, {len(items)}, {len(ratings)}")
        if len(ratings) and (users.min() < 0 or items.min() < 0):
            raise ValueError("user and item indices must be >= 0")
        self._plan(len(ratings), np.bincount(users), np.bincount(items), n_threads, grid)
        self.records, self.block_ptr, sizes = layout_blocks(
            self._blocks(users, items), users, items, ratings, self.grid ** 2, self.n_threads)
        self._finish(sizes)

    @classmethod
    def from_chunks(cls, data, ratings_of, n_threads, grid=None):
        """The trainer of ``StreamedRatings`` read a chunk at a time (a streamed fit), each
        chunk's ratings as ``ratings_of(ratings)`` gives them: two passes (the blocks'
        sizes, then the records scattered into block order in input order), then the
        per-block shuffle. The same layout as from the whole arrays, bit for bit, holding
        nothing the size of the data but the records."""
        self = cls.__new__(cls)
        self._plan(len(data), *data.row_counts(), n_threads, grid)
        n_blocks = self.grid ** 2
        sizes = np.zeros(n_blocks, dtype=np.int64)
        for u, i, _ in data.chunks():
            sizes += np.bincount(self._blocks(u, i), minlength=n_blocks)
        block_ptr = np.zeros(n_blocks + 1, dtype=np.int64)
        np.cumsum(sizes, out=block_ptr[1:])
        records = np.empty(block_ptr[-1], dtype=RECORD_DTYPES[data.dtype])
        cursor, raw = block_ptr[:-1].copy(), records.view(np.uint8)
        for u, i, r in data.chunks():
            _kernels.scatter_records(self._blocks(u, i), u, i, ratings_of(r), cursor, raw)
        if not np.array_equal(cursor, block_ptr[1:]):
            raise data.changed()
        _kernels.shuffle_blocks(block_ptr, raw, records.dtype.itemsize, LAYOUT_SEED,
                                self.n_threads)
        self.records, self.block_ptr = records, block_ptr
        self._finish(sizes)
        return self

    def _plan(self, n_ratings, user_counts, item_counts, n_threads, grid):
        """The grid and each row's group, from the rows' rating counts."""
        self.n_users, self.n_items = len(user_counts), len(item_counts)
        self.n_threads = int(n_threads)
        self.grid = g = choose_grid(n_ratings, max(self.n_users, 1), max(self.n_items, 1), grid)
        self._user_block = groups_of_counts(user_counts, g) * np.int32(g)
        self._item_group = groups_of_counts(item_counts, g)

    def _blocks(self, users, items):
        """Each rating's block id (int32)."""
        block = self._user_block[users]
        block += self._item_group[items]
        return block

    def _finish(self, sizes):
        self.records.flags.writeable = False
        self._record_bytes = self.records.view(np.uint8)
        self.block_sizes = sizes
        self._scratch = np.empty(_kernels.scratch_size(int(sizes.max(initial=0)), self.n_threads),
                                 dtype=np.int32)
        self._block_sse = np.zeros(self.grid ** 2, dtype=np.float64)

    def __len__(self):
        return len(self.records)

    @property
    def nbytes(self):
        """Bytes this trainer holds (records, block offsets, scratch)."""
        return (self.records.nbytes + self.block_ptr.nbytes + self._block_sse.nbytes
                + self._scratch.nbytes)

    def schedule(self, rng):
        """This epoch's rounds (see ``schedule``)."""
        return schedule(self.grid, self.block_sizes, rng)

    def run_epoch(self, state, lr, reg, reg_bias, rng):
        """One epoch updating ``state``'s arrays in place; return the sum of squared errors."""
        P, Q = state["user_factors_"], state["item_factors_"]
        if len(P) < self.n_users or len(Q) < self.n_items:
            raise ValueError(f"factor tables of {len(P)} users and {len(Q)} items are too small "
                             f"for ratings of {self.n_users} users and {self.n_items} items")
        rounds = self.schedule(rng)
        seed = int(rng.integers(0, 2**63))
        return _kernels.sgd_blocks(self._record_bytes, self.block_ptr, rounds, self.grid,
                                   seed, True, self._scratch, P, Q, state["user_bias_"],
                                   state["item_bias_"], state["global_mean_"], lr, reg,
                                   reg_bias, self._block_sse, self.n_threads)


LR_SCHEDULES = ("constant", "inverse")


def penalty_terms(factors, bias, reg, reg_bias):
    """Each row's penalty per rating, ``reg |p_r|^2 + reg_bias b_r^2`` in float64 (``reg``
    in rating units): row by row, so the rows of any band (a ``mfcore.dask`` shard's) get
    the values the whole model's rows get."""
    squares = np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
    b = bias.astype(np.float64)
    return reg * squares + reg_bias * b * b


class SGDEpochs(Trainer):
    """The driver's trainer for one SGD fit: the rate schedule and the penalty of ``model``."""

    def __init__(self, model, layout, params, user_counts, item_counts):
        super().__init__(model)
        self.layout, self.params = layout, params
        self.reg, self.reg_bias = params["reg"], bias_reg(params)
        self._buffers = {}  # the kernel's working copies of the parameters (_work)
        # ratings per user and item row of this fit (the penalty's weights)
        self.user_counts = np.asarray(user_counts, dtype=np.float64)
        self.item_counts = np.asarray(item_counts, dtype=np.float64)

    def lr(self, epoch):
        if self.params["lr_schedule"] == "inverse":
            return self.params["lr"] / (1.0 + self.params["lr_decay"] * (epoch - 1))
        return self.params["lr"]

    def step(self, epoch):
        """One epoch in standardized units (the layout's ratings are ``(r - mu) / scale``):
        the parameters are divided into those units, trained, and multiplied back, every
        epoch the same way, so ``partial_fit`` continues a fit bit for bit."""
        m, lr = self.model, self.lr(epoch)
        units = standard_units(m.rating_scale_)
        state = {name: to_standard(getattr(m, name), units, name, out=self._work(name))
                 for name in UNIT_NAMES}
        sse = self.layout.run_epoch(dict(state, global_mean_=0.0), lr, self.reg, self.reg_bias,
                                    m.rng_)
        for name in UNIT_NAMES:
            from_standard(state[name], units, name, out=getattr(m, name))
        return {"sse": sse * m.rating_scale_ ** 2, "lr": lr}

    def _work(self, name):
        """The array the kernel trains parameter ``name`` in (kept from epoch to epoch): its
        data starts on a cache line, which NumPy's large arrays do not (16 bytes past one),
        so a factor row spans as few cache lines as its length allows (12-18% more updates
        a second at k = 64-128 on an AVX2 CPU)."""
        a = getattr(self.model, name)
        work = self._buffers.get(name)
        if work is None or work.shape != a.shape or work.dtype != a.dtype:
            work = self._buffers[name] = on_cache_lines(a.shape, a.dtype)
        return work

    def penalty(self):
        """SGD's objective applies the penalty once per rating: in rating units
        ``sum_u n_u (reg scale |p_u|^2 + reg_bias b_u^2)`` plus the same over items, with
        the counts of the ratings this fit trains on (``penalty_of``)."""
        m, reg = self.model, self.reg * self.model.rating_scale_
        terms = [penalty_terms(factors[:len(counts)], bias[:len(counts)], reg, self.reg_bias)
                 for counts, factors, bias in (
                     (self.user_counts, m.user_factors_, m.user_bias_),
                     (self.item_counts, m.item_factors_, m.item_bias_))]
        return self.penalty_of(*terms)

    def penalty_of(self, user_terms, item_terms):
        """The penalty from every row's ``penalty_terms``, weighted by its ratings."""
        return float(self.user_counts @ user_terms) + float(self.item_counts @ item_terms)

    def diverged(self, epoch, info):
        smaller = self.params["lr"] / 10
        return Message("training diverged at epoch {0} (non-finite loss or parameters) with "
                       "{1}; try a smaller learning rate, e.g. {2}", epoch,
                       Setting("lr", info["lr"], f"{info['lr']:g}"),
                       Setting("lr", smaller, f"{smaller:g}"))


class SGD(Estimator):
    """Biased matrix factorization trained by stochastic gradient descent.

    ``mfcore.Model`` is the same class (its first name, kept as an alias).

    Predicts ``r(u, i) = mu + b_u + b_i + p_u . q_i``. Each epoch visits the
    training ratings once in a fresh random order; for each rating with error
    ``e = r - r_hat``::

        b_u += lr (e - reg_bias b_u)        b_i += lr (e - reg_bias b_i)
        p_u += lr (e q_i - reg p_u)         q_i += lr (e p_u - reg q_i)

    (``q_i`` is updated with the old ``p_u``). Biases start at 0, factors at
    N(0, init_std^2). Training is scale-free: it runs on the ratings
    standardized by their mean and spread (``rating_scale_``), where ``lr``,
    ``reg`` and ``init_std`` are defined, and the fitted parameters are mapped
    back to rating units, so the defaults suit 1-5 stars, 0.5-5, 1-100 points
    or 0-1 alike.

    Parameters
    ----------
    k : int, default 64
        Number of latent factors.
    epochs : int, default 40
        Passes over the training data (the most, with early stopping). 0 only
        initialises: biases 0 and small random factors, which predict about
        the global mean (a baseline).
    lr : float, default 0.01
        SGD learning rate.
    reg : float, default 0.05
        L2 regularization of the user and item factors.
    reg_bias : float or None, default None
        L2 regularization of the biases; None means ``reg``.
    init_std : float, default 0.01
        Standard deviation of the initial factors.
    lr_schedule : {"constant", "inverse"}, default "constant"
        "inverse" decays the rate as ``lr / (1 + lr_decay * (epoch - 1))``.
    lr_decay : float, default 0.1
        Decay of the "inverse" schedule (ignored by "constant").
    validation_fraction : float or None, default None
        Hold out this share of the training ratings (drawn with ``seed``) as a
        validation set for early stopping; None trains on everything. Only a
        fit from scratch holds out: ``partial_fit`` and warm-start fits train on
        all the ratings they are given.
    n_iter_no_change, tol : int (default 10), float (default 0.0)
        With validation data, stop after ``n_iter_no_change`` epochs whose
        validation RMSE did not improve on the best by more than ``tol``; the
        best epoch's parameters are kept. The patience outlasts the stall of
        the first epochs from small factors (docs/tuning.md).
    warm_start : bool, default False
        A second ``fit`` continues from the fitted parameters (see ``partial_fit``).
    verbose : bool, default False
        Print one line per epoch (losses, validation RMSE, throughput).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the parameters (and of the ratings during training).
    duplicates : {"mean", "last", "keep", "error"}, default "mean"
        What to do with a (user, item) pair rated more than once: average its
        ratings into one (a re-rating should not weigh double), keep the last
        one in input order, keep every copy as its own sample, or raise.
        Merging warns with ``DuplicateRatingsWarning``.
    seed : None, int or numpy.random.Generator, default 0
        Seeds the factor initialisation and the order of each epoch.
    n_threads : None or int, default None
        Threads for the kernels; None (or -1, as in scikit-learn) means
        ``OMP_NUM_THREADS`` when set, else every CPU available to the process
        (affinity and cgroup quota aware).
    block_grid : None or int, default None
        Groups of users (and of items) of the block grid an epoch runs on (see
        ``mfcore.estimators.sgd``); None chooses it from the data's size. A
        ``mfcore.dask`` fit runs the same grid, its workers sharing the user
        groups, and equals the local fit with that grid.

    The defaults were chosen on validation splits of MovieLens 100K and train
    MovieLens-like data well without tuning: a small initial spread lets
    factors grow only where the data support them (the searches and their
    figures: docs/tuning.md).

    Reproducibility: a fit is a function of the data, the hyperparameters and
    the seed alone. Threads train blocks of the rating matrix that share no
    user and no item (see ``mfcore.estimators.sgd``), so 1, 2 or 8 threads give
    bit-identical models on the same CPU (the SIMD path, ``show_config()``,
    may change the last bits between machines).

    Fitted attributes: those of ``mfcore.fitted.FactorModel`` (factors, biases,
    id maps, ``history_`` ...). Each ``history_`` entry holds epoch, lr, train_loss
    (regularized objective per rating), train_rmse (measured during the epoch),
    val_rmse (with validation data), seconds, updates_per_sec.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> model = mfcore.Model(k=8, epochs=20, seed=0).fit(ratings.user, ratings.item, ratings.rating)
    >>> model.predict([1, 2], [3, 4]).shape
    (2,)
    >>> model.n_epochs_
    20
    """

    def __init__(self, k=64, epochs=40, lr=0.01, reg=0.05, reg_bias=None, init_std=0.01,
                 lr_schedule="constant", lr_decay=0.1, validation_fraction=None,
                 n_iter_no_change=10, tol=0.0, warm_start=False, verbose=False,
                 dtype="float32", duplicates="mean", seed=0, n_threads=None,
                 block_grid=None):
        self._store(locals())

    PARAMS = {
        "epochs": p.Interval(int, 0),
        "block_grid": p.Optional(p.Interval(int, 1)),
        "lr": p.Interval(float, 0.0, closed="neither"),
        "reg": p.Interval(float, 0.0),
        "reg_bias": p.Optional(p.Interval(float, 0.0)),
        "lr_schedule": p.Options(*LR_SCHEDULES),
        "lr_decay": p.Interval(float, 0.0),
        **COMMON_PARAMS,
        **EARLY_STOPPING_PARAMS,
    }
    name = "sgd"
    epochs_param = "epochs"
    epoch_word = "epochs"
    capabilities = frozenset({"early_stopping", "continue", "fold_in", "dask", "streaming"})
    default_grid = {"k": [64, 128], "reg": [0.04, 0.06, 0.08, 0.1], "lr": [0.005, 0.01]}
    fold_in_shrinkage = 50.0

    def _trainer(self, data, params, layouts, inputs):
        n_threads = resolve_n_threads(params["n_threads"])
        mu, scale = self.global_mean_, self.rating_scale_
        key = ("sgd", params["dtype"], n_threads, params["block_grid"], mu, scale)
        if key not in layouts:  # the layout depends on the data alone: reused across trials
            if isinstance(data, StreamedRatings):
                layouts[key] = SGDTrainer.from_chunks(
                    data, lambda r: standardized(r, mu, scale, r.dtype), n_threads,
                    params["block_grid"])
            else:
                layouts[key] = SGDTrainer(data.u, data.i, standardized(data.r, mu, scale, data.r.dtype),
                                          n_threads, params["block_grid"])
        return SGDEpochs(self, layouts[key], params, *data.row_counts())

    def _fold_in_penalty(self, shrinkage):
        """SGD applies its penalty once per rating, so with ``shrinkage=0`` fold-in is the point
        a full fit's user update would settle at with the items held fixed:
        ``(n + shrinkage) (reg |p|^2 + reg_bias b^2)``. A trained model's sparse users sit
        closer to zero than that (few updates from a small start), so ``shrinkage`` adds
        that many ratings' worth of penalty; the default 50 suits users with few ratings
        and costs little with many (docs/tuning.md)."""
        params = self._checked_params()
        return params["reg"] * self.rating_scale_, bias_reg(params), shrinkage, 1.0, 0.0


#: The estimator's first name, kept: ``mfcore.Model`` is ``mfcore.SGD``.
Model = SGD
