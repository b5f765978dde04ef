"""Training ratings in the layout the SGD kernel wants, and one epoch over them.

``Model`` owns the epoch loop (schedules, history, divergence checks); this
module owns how an epoch visits the ratings: which order, which threads.
"""
import numpy as np

from . import _kernels


class SGDTrainer:
    """Runs SGD epochs over fixed training ratings (int32 indices, float ratings).

    Epoch order: a fresh permutation drawn from the caller's ``rng`` each epoch;
    with more than one thread the kernel updates lock-free (Hogwild).
    """

    def __init__(self, users, items, ratings, n_threads):
        self.users = np.ascontiguousarray(users, dtype=np.int32)
        self.items = np.ascontiguousarray(items, dtype=np.int32)
        self.ratings = np.ascontiguousarray(ratings)
        self.n_threads = int(n_threads)

    def __len__(self):
        return len(self.ratings)

    def run_epoch(self, state, lr, reg, reg_bias, rng):
        """One epoch updating ``state``'s arrays in place; return the sum of squared errors."""
        order = rng.permutation(len(self.ratings))
        return _kernels.sgd_epoch(self.users, self.items, self.ratings, order,
                                  state["user_factors_"], state["item_factors_"],
                                  state["user_bias_"], state["item_bias_"],
                                  state["global_mean_"], lr, reg, reg_bias, self.n_threads)
