"""Training ratings in the layout the SGD kernel wants, and one epoch over them.

``Model`` owns the epoch loop (schedules, history, divergence checks); this
module owns how an epoch visits the ratings.

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

from ._kernels import sgd as _kernels

#: Record layouts shared with the C kernel (``mf_rec32``/``mf_rec64`` in _sgd_simd.h).
RECORD_DTYPES = {
    np.dtype(np.float32): np.dtype([("u", "<i4"), ("i", "<i4"), ("r", "<f4")]),
    np.dtype(np.float64): np.dtype([("u", "<i4"), ("i", "<i4"), ("r", "<f8")]),
}

#: Aim for at least this many ratings a block; the grid never exceeds MAX_GRID.
MIN_BLOCK = 8192
MAX_GRID = 64
#: Seed of the one-time shuffle of the records within their blocks (part of the layout).
LAYOUT_SEED = 0x6D66636F7265


def choose_grid(n_ratings, n_users, n_items):
    """Groups per side of the block grid: from the data's size alone (not the thread count).

    Enough blocks per round for the threads to balance their load, few enough
    that each block is long compared with the cost of a round's barrier.
    """
    g = int(math.sqrt(n_ratings / MIN_BLOCK))
    return max(1, min(g, MAX_GRID, n_users, n_items))


def balanced_groups(index, n, grid):
    """Group (0..grid-1) of each of ``n`` rows: ``grid`` contiguous index ranges of about
    equal rating counts.

    Contiguous, so that two threads never write the same cache line of the
    bias or factor arrays (interleaved rows would share lines: false sharing).
    """
    cum = np.cumsum(np.bincount(index, minlength=n))
    total = cum[-1] if n else 0
    # row r goes to the group in which its last rating falls
    group = (cum - 1) * grid // max(total, 1)
    return np.clip(group, 0, grid - 1).astype(np.int32)


class SGDTrainer:
    """Runs SGD epochs over fixed training ratings (int32 indices, float ratings).

    See the module docstring for the layout and the schedule.
    """

    def __init__(self, users, items, ratings, n_threads):
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
        self.n_users = int(users.max()) + 1 if len(users) else 0
        self.n_items = int(items.max()) + 1 if len(items) else 0
        self.n_threads = int(n_threads)
        self.grid = g = choose_grid(len(ratings), max(self.n_users, 1), max(self.n_items, 1))

        block = balanced_groups(users, self.n_users, g)[users] * np.int32(g)
        block += balanced_groups(items, self.n_items, g)[items]
        sizes = np.bincount(block, minlength=g * g)
        self.block_ptr = np.zeros(g * g + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.block_ptr[1:])
        # shuffled within each block (a fixed seed), so that the runs of consecutive records
        # the kernel visits are not runs of one user when the input is sorted (as rating
        # files often are)
        self.records = np.empty(len(ratings), dtype=RECORD_DTYPES[ratings.dtype])
        _kernels.layout_records(block, users, items, ratings, self.block_ptr,
                                self.records.view(np.uint8), LAYOUT_SEED, self.n_threads)
        self.records.flags.writeable = False
        self._record_bytes = self.records.view(np.uint8)
        self._block_sizes = sizes
        self._scratch = np.empty(_kernels.scratch_size(int(sizes.max(initial=0)), self.n_threads),
                                 dtype=np.int32)
        self._block_sse = np.zeros(g * g, dtype=np.float64)

    def __len__(self):
        return len(self.records)

    @property
    def nbytes(self):
        """Bytes this trainer holds (records, block offsets, scratch)."""
        return (self.records.nbytes + self.block_ptr.nbytes + self._block_sse.nbytes
                + self._scratch.nbytes)

    def schedule(self, rng):
        """This epoch's rounds: ``grid`` random diagonals of the block grid, as block ids.

        Round ``s`` pairs row group ``rows[b]`` with column group
        ``cols[(b + shifts[s]) % grid]``; within a round the largest blocks come
        first (threads pick them up in that order; the result does not depend on it).
        """
        g = self.grid
        rows, cols, shifts = rng.permutation(g), rng.permutation(g), rng.permutation(g)
        b = np.arange(g)
        blocks = rows[None, :] * g + cols[(b[None, :] + shifts[:, None]) % g]
        by_size = np.argsort(-self._block_sizes[blocks], axis=1, kind="stable")
        return np.ascontiguousarray(np.take_along_axis(blocks, by_size, axis=1),
                                    dtype=np.int32).ravel()

    def run_epoch(self, state, lr, reg, reg_bias, rng):
        """One epoch updating ``state``'s arrays in place; return the sum of squared errors."""
        P, Q = state["user_factors_"], state["item_factors_"]
        if len(P) < self.n_users or len(Q) < self.n_items:
            raise ValueError(f"factor tables of {len(P)} users and {len(Q)} items are too small "
                             f"for ratings of {self.n_users} users and {self.n_items} items")
        schedule = self.schedule(rng)
        seed = int(rng.integers(0, 2**63))
        return _kernels.sgd_blocks(self._record_bytes, self.block_ptr, schedule, self.grid,
                                   seed, True, self._scratch, P, Q, state["user_bias_"],
                                   state["item_bias_"], state["global_mean_"], lr, reg,
                                   reg_bias, self._block_sse, self.n_threads)
