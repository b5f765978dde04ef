"""Time terms of ``mfcore.BayesianMF``: biases of groups of ratings defined by when they were given.

Koren's timeSVD++ terms (KDD 2009), sampled in the same chain as the rest of the
model. Each term is a bias that a rating adds by the group it falls in:

``user_day``
    ``b_{u,d}``: user u's bias on the day d of the rating. A day's ratings share a
    mood, a scale, sometimes a person at the keyboard; on ML-100K u1 this term
    alone takes the test RMSE from 0.887 to 0.882 (``benchmarks/features.py``).
``item_bin``
    ``b_{i,bin(d)}``: item i's bias in its time bin (``time_bins`` equal bins over
    the training days): popularity that drifts.
``day``
    ``b_d``: the day's bias over all users (the linear part of the date one-hot
    that myFM's extended MovieLens example uses).

The weights of each term share a zero-mean normal prior whose precision has the
Gamma hyperprior of the model's other groups (``alpha_lambda``, ``beta_lambda``),
and every sweep draws each weight from its full conditional given the residuals
of its group's ratings. The draws are keyed on (seed, sweep, stream, group), like
the sampler's, and the sums are NumPy's sequential ones, so a fit stays
bit-identical for any thread count.

Times outside what training saw: a group without training ratings (a user's new
day, a day after the training range) has no data, so its weight is the prior's:
mean 0, and the predictive std adds the prior variance ``1/lambda``. ``item_bin``
puts a day before or after the training range in the first or last bin (the
nearest, as Koren does), so an item's latest drift carries forward. Predictions
without ``times`` leave every term out (its prior mean, 0).

Examples
--------
>>> import numpy as np, mfcore
>>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
>>> times = 1.6e9 + 86400 * (np.arange(len(ratings)) % 30)    # 30 days, in Unix seconds
>>> bmf = mfcore.BayesianMF(k=4, burn_in=5, n_samples=10, seed=0)
>>> bmf = bmf.fit(ratings.user, ratings.item, ratings.rating, times=times)
>>> bmf.time_encoding_.terms
('user_day',)
>>> bool(np.isfinite(bmf.predict(ratings.user[:3], ratings.item[:3], times=times[:3])).all())
True
"""
import json

import numpy as np

from . import params as p
from ._kernels import bayes as _bayes
from .data import check_lengths, to_numpy

__all__ = ["TERMS", "as_seconds"]

#: The time terms, in the order a model keeps them.
TERMS = ("user_day", "item_bin", "day")
SECONDS_PER_DAY = 86400
#: The sampler's random streams of the terms are ``STREAM + term index`` (the kernel's run
#: to 13: ``bayes_gibbs.h``, ``bayes_features.h``).
STREAM = 14
#: Days are stored offset by this, so that every key is non-negative.
DAY_OFFSET = 2**31


class TimeTerms(p.Constraint):
    """A ``time_terms`` value: names of ``TERMS`` as a sequence or as comma-separated text
    (``"user_day,item_bin"``), distinct, normalised to a tuple in ``TERMS`` order."""

    @staticmethod
    def _names(v):
        return tuple(n.strip() for n in v.split(",")) if isinstance(v, str) else v

    def accepts(self, v):
        names = self._names(v)
        return (isinstance(names, (tuple, list)) and len(names) > 0
                and all(isinstance(n, str) and n in TERMS for n in names)
                and len(set(names)) == len(names))

    def normalize(self, v):
        names = self._names(v)
        return tuple(t for t in TERMS if t in names)

    def __str__(self):
        return "one of " + ", ".join(map(repr, TERMS)) + ", or a list of distinct ones"

    def invalid_values(self):
        return ["user", (), ("day", "day"), 3]


def as_seconds(times, n, what="times"):
    """``times`` (Unix seconds as numbers, or numpy/pandas datetimes) as float64 seconds,
    checked: finite, and one per rating when ``n`` is given. Raises ValueError naming the
    first bad one.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcore.timeterms import as_seconds
    >>> as_seconds(np.array(["1998-03-01", "1998-03-02"], dtype="datetime64[D]"), 2)
    array([8.887104e+08, 8.887968e+08])
    """
    values = to_numpy(times)
    if values.dtype.kind == "M":
        if np.isnat(values).any():
            raise ValueError(f"{what} holds a missing time (NaT) at position "
                             f"{int(np.flatnonzero(np.isnat(values))[0])}")
        values = values.astype("datetime64[s]").astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be Unix seconds or datetimes, got dtype {values.dtype}"
                         + (f" (first value {values[0]!r})" if len(values) else ""))
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {values.shape}")
    if n is not None:
        check_lengths(ratings=np.empty(n), **{what: values})
    bad = ~np.isfinite(values) | (np.abs(values) > 1e14)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what} holds {float(values[first])!r} at position {first}: times must be "
                         "finite Unix seconds")
    return values


class TimeEncoding:
    """How ratings' times map to each term's groups: the terms, the first training day
    (``origin``) and the item bins (``n_bins`` of ``bin_days`` days). Kept in the model and
    its file, so a loaded model groups new times exactly as the fitted one did."""

    def __init__(self, terms, origin, n_bins, bin_days):
        self.terms, self.origin = tuple(terms), int(origin)
        self.n_bins, self.bin_days = int(n_bins), int(bin_days)

    @classmethod
    def fit(cls, terms, n_bins, seconds):
        """The encoding of training ``seconds``: bins of equal whole days covering them."""
        days = np.floor(seconds / SECONDS_PER_DAY)
        origin, span = int(days.min()), int(days.max() - days.min()) + 1
        return cls(terms, origin, n_bins, -(-span // n_bins))

    def days(self, seconds):
        """Days since the first training day (negative before it), int64."""
        return np.floor(seconds / SECONDS_PER_DAY).astype(np.int64) - self.origin

    def keys(self, term, u, i, seconds):
        """Each rating's group in ``term`` as an int64 key (rows ``u``, ``i``; an unknown
        row, -1, gets a key no training group has)."""
        day = self.days(seconds)
        if term == "day":
            return day + DAY_OFFSET
        if term == "user_day":
            return np.where(u >= 0, (u.astype(np.int64) << 32) | (day + DAY_OFFSET), -1)
        time_bin = np.clip(day // self.bin_days, 0, self.n_bins - 1)
        return np.where(i >= 0, (i.astype(np.int64) << 32) | time_bin, -1)

    def to_state(self):
        return {"time_encoding": np.str_(json.dumps(
            {"terms": list(self.terms), "origin": self.origin, "n_bins": self.n_bins,
             "bin_days": self.bin_days}))}

    @classmethod
    def from_state(cls, state):
        """The encoding saved by ``to_state``, checked (ValueError names the problem)."""
        fields = json.loads(str(state["time_encoding"]))
        if (not isinstance(fields, dict) or not isinstance(fields.get("terms"), list)
                or not fields["terms"] or any(t not in TERMS for t in fields["terms"])
                or len(set(fields["terms"])) != len(fields["terms"])):
            raise ValueError(f"time_encoding: bad terms in {fields!r}")
        for name, low in (("origin", -2**40), ("n_bins", 1), ("bin_days", 1)):
            if not isinstance(fields.get(name), int) or not low <= fields[name] < 2**40:
                raise ValueError(f"time_encoding: bad {name} in {fields!r}")
        return cls(fields["terms"], fields["origin"], fields["n_bins"], fields["bin_days"])


class TimeSampler:
    """The chain's time terms (standardized units): per term the group of each training
    rating in the residuals' order, the weights and the prior precision.

    ``u``, ``i``, ``seconds``: the training ratings (data order); ``order``: the data
    row of each residual position."""

    def __init__(self, encoding, u, i, seconds, order):
        self.encoding, self.keys, self.groups, self.counts = encoding, [], [], []
        for term in encoding.terms:
            keys, group = np.unique(encoding.keys(term, u, i, seconds), return_inverse=True)
            self.keys.append(keys)
            self.groups.append(group.astype(np.int32)[order])
            self.counts.append(np.bincount(group, minlength=len(keys)).astype(np.float64))
        self.weights = [np.zeros(len(k)) for k in self.keys]
        self.precisions = np.ones(len(self.keys))

    def sweep(self, residual, alpha, seed, sweep, alpha_lambda, beta_lambda):
        """Draw every term's weights, then its precision, from their full conditionals,
        keeping ``residual`` (rating minus prediction, time terms included) current."""
        for t, (group, w, counts) in enumerate(zip(self.groups, self.weights, self.counts)):
            without = residual + w[group]
            precision = self.precisions[t] + alpha * counts
            noise = np.empty(len(w))
            _bayes.draws("normal", seed, STREAM + t, sweep, 0, noise)
            w[:] = (alpha * np.bincount(group, weights=without, minlength=len(w)) / precision
                    + noise / np.sqrt(precision))
            np.subtract(without, w[group], out=residual)
            gamma = np.empty(1)
            _bayes.draws("gamma", seed, STREAM + t, sweep, 1, gamma,
                         shape=(alpha_lambda + len(w)) / 2)
            self.precisions[t] = gamma[0] / ((beta_lambda + np.dot(w, w)) / 2)

    def current(self, u, i, seconds):
        """The current sample's time terms summed for the pairs (rows ``u``, ``i``)."""
        out = np.zeros(len(u))
        for term, keys, w in zip(self.encoding.terms, self.keys, self.weights):
            at, hit = _find(keys, self.encoding.keys(term, u, i, seconds))
            out[hit] += w[at[hit]]
        return out

    def kept(self, scale):
        """The current sample in rating units: (the weights of all terms concatenated, the
        terms' prior precisions)."""
        return np.concatenate(self.weights) * scale, self.precisions / (scale * scale)

    def layout(self):
        """(keys of all terms concatenated, where each term's keys start and end)."""
        return (np.concatenate(self.keys),
                np.cumsum([0] + [len(k) for k in self.keys]).astype(np.int64))


def _find(keys, wanted):
    """(positions, found) of ``wanted`` in the sorted ``keys``."""
    at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    found = (keys[at] == wanted) if len(keys) else np.zeros(len(wanted), bool)
    return at, found


def lookup(encoding, keys, ptr, u, i, seconds):
    """Per term: (term index, the pairs' rows among ``keys`` (the model's concatenated
    group keys, term t at ``ptr[t]:ptr[t + 1]``), whether each pair's group is there)."""
    for t, term in enumerate(encoding.terms):
        at, hit = _find(keys[ptr[t]:ptr[t + 1]], encoding.keys(term, u, i, seconds))
        yield t, ptr[t] + at, hit


def time_means(encoding, keys, ptr, means, u, i, seconds):
    """The pairs' summed time terms, each group's posterior mean ``means`` (unseen: 0)."""
    out = np.zeros(len(u))
    for _, rows, hit in lookup(encoding, keys, ptr, u, i, seconds):
        out[hit] += means[rows[hit]]
    return out


def time_moments(encoding, keys, ptr, samples, precisions, u, i, seconds):
    """Per kept sample, the pairs' summed time terms and the variance their unseen groups
    add (both (len(u), S), rating units): a group seen in training adds its sampled weight,
    an unseen one its prior (mean 0, variance 1/lambda of that sample, ``precisions``
    (terms, S))."""
    n, S = len(u), samples.shape[1]
    mean, var = np.zeros((n, S)), np.zeros((n, S))
    for t, rows, hit in lookup(encoding, keys, ptr, u, i, seconds):
        mean[hit] += samples[rows[hit]]
        var[~hit] += 1.0 / precisions[t]
    return mean, var
