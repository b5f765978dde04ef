"""Rating data sets: MovieLens by name (local copy, cache or download) and a synthetic generator.

Both return a pandas DataFrame with columns ``user``, ``item``, ``rating``
(int32, int32, float32; plus int64 ``timestamp`` for MovieLens), the layout
``mfcore.read_ratings`` returns.

Where MovieLens comes from, in order:

1. ``$MFCORE_DATA/<folder>/<file>``, the layout of the official archives
   (e.g. ``$MFCORE_DATA/ml-100k/u.data``);
2. the cache, ``$MFCORE_CACHE`` or ``$XDG_CACHE_HOME/mfcore`` or
   ``~/.cache/mfcore``, same layout;
3. a download of the official GroupLens archive (unless ``download=False``),
   checked against its SHA-256 and unpacked atomically into the cache: into a
   temporary folder first, renamed into place only when complete. Nothing
   ever prompts; when offline a ``DataUnavailableError`` says so.

Examples
--------
>>> import mfcore
>>> ratings = mfcore.datasets.synthetic(n_users=50, n_items=20, n_ratings=400, seed=0)
>>> list(ratings.columns), len(ratings)
(['user', 'item', 'rating'], 400)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataUnavailableError, warn
from .io import read_ratings

if TYPE_CHECKING:
    import pandas as pd

    from ._typing import Seed

__all__ = ["synthetic", "PRESETS", "movielens", "movielens_path", "movielens_features",
           "read_movielens_side", "MOVIELENS", "cache_dir"]


# --- MovieLens ----------------------------------------------------------------------

_BASE = "https://files.grouplens.org/datasets/movielens/"

# name: (archive, SHA-256 of the archive, folder inside it, rating file, number of ratings)
# The SHA-256 values are the ones TensorFlow Datasets publishes for these archives
# (tensorflow_datasets/url_checksums/movielens.txt), each also pinned identically by
# several unrelated projects. For ml-10m no published SHA-256 is known to us, so
# none is stored: its download is checked by its rating count instead.
MOVIELENS = {
    "ml-100k": ("ml-100k.zip", "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                "ml-100k", "u.data", 100_000),
    "ml-1m": ("ml-1m.zip", "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
              "ml-1m", "ratings.dat", 1_000_209),
    "ml-10m": ("ml-10m.zip", None, "ml-10M100K", "ratings.dat", 10_000_054),
    "ml-20m": ("ml-20m.zip", "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
               "ml-20m", "ratings.csv", 20_000_263),
    "ml-25m": ("ml-25m.zip", "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
               "ml-25m", "ratings.csv", 25_000_095),
    "ml-latest-small": ("ml-latest-small.zip",
                        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
                        "ml-latest-small", "ratings.csv", 100_836),
}


def _canonical(name):
    key = str(name).lower().strip()
    key = key if key.startswith("ml-") else "ml-" + key.removeprefix("ml")
    if key not in MOVIELENS:
        raise ValueError(f"unknown MovieLens set {name!r}; choose one of {sorted(MOVIELENS)}")
    return key


def cache_dir() -> str:
    """The folder downloads are kept in: $MFCORE_CACHE, else $XDG_CACHE_HOME/mfcore, else ~/.cache/mfcore.

    Examples
    --------
    >>> import os
    >>> from mfcore import datasets
    >>> os.path.basename(datasets.cache_dir()) or "set by $MFCORE_CACHE"  # doctest: +ELLIPSIS
    '...'
    """
    if os.environ.get("MFCORE_CACHE"):
        return os.environ["MFCORE_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mfcore")


def _checked_data_root(root, folder, filename):
    """``$MFCORE_DATA`` as the folder to look in, with a warning when it cannot hold the set:
    a folder that does not exist, one without ``folder/``, or ``folder`` itself (one level too
    deep: then its parent is used)."""
    if not os.path.isdir(root):
        warn(f"$MFCORE_DATA is {root!r}, which is not a folder; it should name the folder "
             f"that holds {folder}/ (looking in the cache instead)", UserWarning)
    elif not os.path.isfile(os.path.join(root, folder, filename)):
        if os.path.isfile(os.path.join(root, filename)):
            parent = os.path.dirname(os.path.abspath(root))
            if os.path.basename(os.path.abspath(root)) == folder:
                warn(f"$MFCORE_DATA is {root!r}, the {folder} folder itself; it should name "
                     f"the folder that holds {folder}/ ({parent!r}), which is used",
                     UserWarning)
                return parent
            warn(f"$MFCORE_DATA is {root!r}, which holds {filename} directly; it should name "
                 f"the folder that holds {folder}/{filename} (looking in the cache instead)",
                 UserWarning)
            return root
        warn(f"$MFCORE_DATA is {root!r}, which has no {folder}/{filename}; looking in the "
             "cache instead", UserWarning)
    return root


def movielens_path(name: str = "ml-100k", *, download: bool = True, url: str | None = None,
                   sha256: str | None = "official", timeout: float = 30.0,
                   progress: Callable[[str], object] | None = None) -> str:
    """Path of a MovieLens rating file: from $MFCORE_DATA, the cache, or a verified download.

    ``url`` replaces the official archive address (a mirror, or a ``file://``
    URL); ``sha256`` the expected archive digest ("official": the one in
    ``MOVIELENS``; None: do not check). ``timeout`` bounds each network wait in
    seconds. ``progress``, if given, is called with one line of text before a
    download starts. Raises ``DataUnavailableError`` when the set is not on
    disk and cannot be downloaded or fails its check.

    Examples
    --------
    >>> import mfcore
    >>> from mfcore import datasets
    >>> try:
    ...     path = datasets.movielens_path("ml-100k", download=False)
    ... except mfcore.DataUnavailableError as exc:
    ...     path = None
    """
    key = _canonical(name)
    archive, official, folder, filename, _ = MOVIELENS[key]
    places = []
    if os.environ.get("MFCORE_DATA"):
        data = os.environ["MFCORE_DATA"]
        places.append(_checked_data_root(data, folder, filename))
    places.append(cache_dir())
    for root in places:
        path = os.path.join(root, folder, filename)
        if os.path.isfile(path):
            return path
    looked = " and ".join(os.path.join(root, folder, filename) for root in places)
    if not download:
        raise DataUnavailableError(f"MovieLens {key} not found at {looked} (download=False)")
    expected = official if sha256 == "official" else sha256
    url = url or _BASE + archive
    if progress:
        progress(f"downloading {url} into {cache_dir()} ...")
    _download_and_unpack(url, expected, folder, filename, timeout)
    return os.path.join(cache_dir(), folder, filename)


def movielens(name: str = "ml-100k", *, download: bool = True, verify: bool = True, **kwargs: Any) -> pd.DataFrame:
    """A MovieLens set as a DataFrame (user, item, rating, timestamp); see ``movielens_path``.

    With ``verify`` the number of ratings must be the published one, so an
    edited or truncated copy is refused rather than silently used.

    Examples
    --------
    >>> import mfcore
    >>> from mfcore import datasets
    >>> try:                     # from $MFCORE_DATA, the cache, or a verified download
    ...     ratings = datasets.movielens("ml-100k", download=False)
    ... except mfcore.DataUnavailableError:
    ...     ratings = None       # not on this machine, and downloads were not allowed
    """
    key = _canonical(name)
    path = movielens_path(key, download=download, **kwargs)
    frame = read_ratings(path)
    expected = MOVIELENS[key][4]
    if verify and len(frame) != expected:
        raise ValueError(f"{path} holds {len(frame):,} ratings but MovieLens {key} has "
                         f"{expected:,}: an edited or incomplete copy (pass verify=False to use it)")
    return frame


def _download_and_unpack(url, sha256, folder, filename, timeout):
    cache = cache_dir()
    try:
        os.makedirs(cache, exist_ok=True)
        fd, part = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=cache)
    except OSError as exc:
        raise DataUnavailableError(f"cannot write to the cache folder {cache}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, timeout)
        if sha256 is not None and digest != sha256.lower():
            raise DataUnavailableError(
                f"the archive from {url} failed its check: SHA-256 {digest}, expected {sha256} "
                "(corrupted or changed download); nothing was kept")
        if sha256 is None:
            warn(f"no published SHA-256 to check {url} against; got {digest}", UserWarning)
        _unpack(part, url, cache, folder, filename)
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _fetch(url, out, timeout):
    """Copy ``url`` into ``out``; return the SHA-256 hex digest of what was read."""
    import urllib.error  # (here, not at the top: it loads http, ssl and email, and
    import urllib.request  # import mfcore stays light; see test_import_mfcore_stays_light)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataUnavailableError(f"cannot download {url} ({reason}); offline? Put the "
                                   "unpacked set under $MFCORE_DATA instead") from exc
    return digest.hexdigest()


def _unpack(archive_path, url, cache, folder, filename):
    """Unpack ``folder`` from the archive into the cache atomically."""
    target = os.path.join(cache, folder)
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=cache)
    try:
        try:
            with zipfile.ZipFile(archive_path) as archive:
                for member in archive.namelist():
                    parts = member.replace("\\", "/").split("/")
                    if member.startswith("/") or ".." in parts or ":" in parts[0]:
                        raise DataUnavailableError(f"{url}: unsafe path {member!r} in the archive")
                archive.extractall(tmp)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise DataUnavailableError(f"{url} is not a valid zip archive ({exc})") from exc
        if not os.path.isfile(os.path.join(tmp, folder, filename)):
            raise DataUnavailableError(f"{url}: the archive has no {folder}/{filename}")
        try:
            os.rename(os.path.join(tmp, folder), target)
        except OSError:
            if not os.path.isfile(os.path.join(target, filename)):  # not just a concurrent winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the synthetic generator ------------------------------------------------------

# Shapes of the real sets: (users, items, ratings, fewest ratings per user).
PRESETS = {
    "ml-100k": (943, 1_682, 100_000, 20),
    "ml-1m": (6_040, 3_706, 1_000_209, 20),
    "ml-10m": (69_878, 10_677, 10_000_054, 20),
    "ml-20m": (138_493, 26_744, 20_000_263, 20),
    "netflix": (480_189, 17_770, 100_480_507, 1),
}

_CHUNK = 1 << 21          # ratings generated per block: bounds the temporary memory
_MAX_USER_SHARE = 0.6     # no user rates more than this share of the items


def _power_law(n, alpha, offset, rng):
    """Weights (summing to 1) proportional to (rank + offset)^-alpha, ranks shuffled over ids."""
    w = (np.arange(1, n + 1, dtype=np.float64) + offset) ** -alpha
    w /= w.sum()
    return w[rng.permutation(n)]


def _user_counts(n_users, n_items, n_ratings, min_per_user, weights, rng):
    """Ratings per user: ``min_per_user`` each plus a power-law share of the rest, capped."""
    cap = max(min_per_user, int(_MAX_USER_SHARE * n_items))
    counts = np.full(n_users, min_per_user, dtype=np.int64)
    left = n_ratings - counts.sum()
    while left > 0:
        open_ = counts < cap
        w = np.where(open_, weights, 0.0)
        counts += rng.multinomial(left, w / w.sum())
        over = np.maximum(counts - cap, 0)
        counts -= over
        left = int(over.sum())
    return counts


def _draw_items(n, cdf_inv, n_items, rng, uniform):
    if uniform:
        return rng.integers(0, n_items, n)
    return cdf_inv(rng.random(n))


def _sample_block(users, counts, n_items, item_rank_to_id, alpha, offset, rng):
    """Distinct items for each user of a block, drawn by popularity; returns sorted int64 keys.

    A key is ``local_user * n_items + item``. Draws that repeat a (user, item)
    pair are redrawn; after a few rounds the remaining redraws are uniform,
    which always converges because no user rates more than 60% of the items.
    """
    lo = (1 + offset) ** (1 - alpha)
    hi = (n_items + 1 + offset) ** (1 - alpha)

    def cdf_inv(u):  # inverse CDF of the continuous power law on [1, n_items + 1)
        rank = (lo + u * (hi - lo)) ** (1.0 / (1 - alpha)) - offset
        return item_rank_to_id[np.minimum(rank.astype(np.int64) - 1, n_items - 1)]

    local = np.repeat(np.arange(len(users), dtype=np.int64), counts)
    keys = np.sort(local * n_items + _draw_items(len(local), cdf_inv, n_items, rng, False))
    dup = np.zeros(len(keys), dtype=bool)
    dup[1:] = keys[1:] == keys[:-1]
    pending = keys[dup] // n_items
    keys = keys[~dup]
    rounds = 0
    while len(pending):
        rounds += 1
        new = np.sort(pending * n_items + _draw_items(len(pending), cdf_inv, n_items, rng,
                                                      rounds > 3))
        bad = np.zeros(len(new), dtype=bool)
        bad[1:] = new[1:] == new[:-1]
        pos = np.searchsorted(keys, new)
        bad |= (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == new)
        keys = np.insert(keys, pos[~bad], new[~bad])
        pending = new[bad] // n_items
    return keys


def _cover_all_items(user, item, n_items, rng):
    """Give every item at least one rating by moving ratings off popular items (in place)."""
    for _ in range(100):
        counts = sum(np.bincount(item[lo:lo + _CHUNK], minlength=n_items)  # bincount copies
                     for lo in range(0, len(item), _CHUNK))                  # to int64: in blocks
        missing = np.flatnonzero(counts == 0)
        if not len(missing):
            return
        # Rows drawn at random land mostly on popular items; keep those whose item can
        # spare a rating. A row moved to a missing item cannot collide with another
        # rating of its user, since that item had none.
        rows = np.unique(rng.integers(0, len(item), 4 * len(missing) + 64))
        rows = rows[counts[item[rows]] > len(missing) + 1]
        rows = rng.permutation(rows)[:len(missing)]
        item[rows] = missing[:len(rows)]
    raise RuntimeError("could not give every item a rating; use more ratings or fewer items")


def synthetic(preset: str | None = None, *, n_users: int | None = None, n_items: int | None = None,
              n_ratings: int | None = None, min_per_user: int | None = None, k: int = 10, noise: float = 0.6,
              user_alpha: float = 0.8, item_alpha: float = 0.9, seed: Seed = 0,
              return_truth: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Seeded synthetic ratings with planted low-rank structure, shaped like real sets.

    ``preset`` is one of ``PRESETS`` (``"ml-100k"``, ``"ml-1m"``, ``"ml-10m"``,
    ``"ml-20m"``, ``"netflix"``) giving users, items, ratings and the fewest
    ratings per user of the real set; explicit ``n_users``, ``n_items``,
    ``n_ratings`` and ``min_per_user`` override it.

    Model: each user rates ``min_per_user`` items plus a power-law share
    (exponent ``user_alpha``) of the rest, choosing distinct items by a
    power-law popularity (exponent ``item_alpha``); every item gets at least
    one rating. A rating is ``mu + b_u + b_i + p_u . q_i + N(0, noise^2)`` with
    rank-``k`` factors, rounded and clipped to the integers 1..5, which gives
    a MovieLens-like histogram (mean about 3.5).

    Returns a DataFrame with columns ``user``, ``item`` (int32 ids from 1) and
    ``rating`` (float32), grouped by user in ascending order. With
    ``return_truth=True`` also a dict of the planted parameters
    (``global_mean``, ``user_bias``, ``item_bias``, ``user_factors``,
    ``item_factors``; row ``id - 1``) and ``expected``, the noise-free score of
    each row before rounding. Memory is about the output (12 bytes a rating)
    plus a fixed block of a few tens of MB.

    Examples
    --------
    >>> from mfcore import datasets
    >>> ratings = datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> len(ratings), list(ratings.columns)
    (3000, ['user', 'item', 'rating'])
    >>> sorted(datasets.PRESETS)  # doctest: +ELLIPSIS
    ['ml-100k', ...]
    """
    import pandas as pd

    shape = _resolve_shape(preset, n_users, n_items, n_ratings, min_per_user)
    n_users, n_items, n_ratings, min_per_user = shape
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    for name, value in (("noise", noise), ("user_alpha", user_alpha), ("item_alpha", item_alpha)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if item_alpha == 1.0:
        item_alpha = 1.0 + 1e-9  # the inverse CDF below divides by (1 - alpha)
    rng = np.random.default_rng(seed)

    user, item = _who_rates_what(shape, user_alpha, item_alpha, rng)

    # --- what they rate it ------------------------------------------------------------
    factor_std = (0.35 / k) ** 0.25          # p.q then has variance about 0.35
    truth = {
        "global_mean": 3.55,
        "user_bias": rng.normal(0.0, 0.5, n_users).astype(np.float32),
        "item_bias": rng.normal(0.0, 0.6, n_items).astype(np.float32),
        "user_factors": rng.normal(0.0, factor_std, (n_users, k)).astype(np.float32),
        "item_factors": rng.normal(0.0, factor_std, (n_items, k)).astype(np.float32),
    }
    rating = np.empty(n_ratings, dtype=np.float32)
    expected = np.empty(n_ratings, dtype=np.float32) if return_truth else None
    step = _CHUNK // 8  # the factor gathers below take 8 k bytes a rating
    for lo in range(0, n_ratings, step):
        u, i = user[lo:lo + step], item[lo:lo + step]
        score = np.einsum("nk,nk->n", truth["user_factors"][u], truth["item_factors"][i])
        score += truth["user_bias"][u] + truth["item_bias"][i] + np.float32(truth["global_mean"])
        if expected is not None:
            expected[lo:lo + step] = score
        score += rng.normal(0.0, noise, len(u)).astype(np.float32)
        rating[lo:lo + step] = np.clip(np.rint(score), 1, 5)
    user += 1
    item += 1
    frame = pd.DataFrame({"user": user, "item": item, "rating": rating}, copy=False)
    if return_truth:
        truth["expected"] = expected
        return frame, truth
    return frame


def _who_rates_what(shape, user_alpha, item_alpha, rng):
    """(user, item) rows (int32, from 0) of ``synthetic``'s ratings, grouped by user."""
    n_users, n_items, n_ratings, min_per_user = shape
    counts = _user_counts(n_users, n_items, n_ratings, min_per_user,
                          _power_law(n_users, user_alpha, max(1.0, n_users / 1000), rng), rng)
    item_rank_to_id = rng.permutation(n_items)
    user = np.empty(n_ratings, dtype=np.int32)
    item = np.empty(n_ratings, dtype=np.int32)
    ends = np.cumsum(counts)
    start_user, start = 0, 0
    while start_user < n_users:
        # users whose ratings fit in one block (at least one user per block)
        stop_user = max(int(np.searchsorted(ends, start + _CHUNK, side="right")), start_user + 1)
        block = np.arange(start_user, stop_user)
        keys = _sample_block(block, counts[block], n_items, item_rank_to_id, item_alpha,
                              max(1.0, n_items / 1000), rng)
        stop = start + len(keys)
        user[start:stop] = block[keys // n_items]
        item[start:stop] = keys % n_items
        start_user, start = stop_user, stop
    _cover_all_items(user, item, n_items, rng)
    return user, item


def _resolve_shape(preset, n_users, n_items, n_ratings, min_per_user):
    if preset is not None:
        key = str(preset).lower()
        if key not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        d_users, d_items, d_ratings, d_min = PRESETS[key]
    else:
        d_users, d_items, d_ratings, d_min = 1_000, 500, 20_000, 1
    shape = (d_users if n_users is None else n_users, d_items if n_items is None else n_items,
             d_ratings if n_ratings is None else n_ratings,
             d_min if min_per_user is None else min_per_user)
    names = ("n_users", "n_items", "n_ratings", "min_per_user")
    for name, value in zip(names, shape):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    n_users, n_items, n_ratings, min_per_user = (int(v) for v in shape)
    if n_users >= 2**31 or n_items >= 2**31:
        raise ValueError("n_users and n_items must be below 2**31 (int32 ids)")
    if min_per_user > _MAX_USER_SHARE * n_items:
        raise ValueError(f"min_per_user={min_per_user} is more than {_MAX_USER_SHARE:.0%} of "
                         f"n_items={n_items}")
    if n_ratings < n_users * min_per_user:
        raise ValueError(f"n_ratings={n_ratings} is fewer than n_users * min_per_user = "
                         f"{n_users * min_per_user}")
    if n_ratings < n_items:
        raise ValueError(f"n_ratings={n_ratings} is fewer than n_items={n_items}: "
                         "every item gets at least one rating")
    if n_ratings > _MAX_USER_SHARE * n_users * n_items:
        raise ValueError(f"n_ratings={n_ratings} is more than {_MAX_USER_SHARE:.0%} of all "
                         f"{n_users} x {n_items} pairs")
    return n_users, n_items, n_ratings, min_per_user


# --- MovieLens side tables ------------------------------------------------------------------

#: The genres of ML-100K's u.item flags, in column order (its u.genre).
GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western")
#: The side files this module reads by name, and which side each describes.
SIDE_FILES = {"u.user": "user", "users.dat": "user", "u.item": "item", "movies.dat": "item",
              "movies.csv": "item"}


def read_movielens_side(path: str) -> pd.DataFrame:
    """One MovieLens side file (``u.user``, ``u.item``, ``users.dat``, ``movies.dat`` or
    ``movies.csv``, by its name) as a feature table indexed by id, the form
    ``BayesianMF.fit(user_features=..., item_features=...)`` takes.

    Users: gender, occupation and the zip code's first digit as categories; age as a
    number (ML-100K) or as its published age group, a category (ML-1M). Items: genres
    (multi-valued, ``"Action|Comedy"``) and the release year, a number (missing years get
    the median). Titles, dates and URLs are left out: they identify an item rather than
    describe it.
    """
    import pandas as pd

    name = os.path.basename(path)
    if name not in SIDE_FILES:
        raise ValueError(f"{path}: not a MovieLens side file (one of {', '.join(SIDE_FILES)})")
    if name in ("u.user", "users.dat"):
        names = (["id", "age", "gender", "occupation", "zip"] if name == "u.user"
                 else ["id", "gender", "age", "occupation", "zip"])
        users = pd.read_csv(path, sep="|" if name == "u.user" else "::", engine="python",
                            header=None, names=names, dtype=str).set_index("id")
        users.index = users.index.astype(np.int64)
        users["zip"] = users["zip"].str[:1]
        users["age"] = users["age"].astype(float) if name == "u.user" else users["age"]
        return users[["gender", "age", "occupation", "zip"]]
    if name == "u.item":
        raw = pd.read_csv(path, sep="|", header=None, encoding="latin-1")
        flags = raw.iloc[:, 5:5 + len(GENRES_100K)].to_numpy()
        genres = ["|".join(g for g, f in zip(GENRES_100K, row) if f) for row in flags]
        ids, year = raw[0], pd.to_numeric(raw[2].str[-4:], errors="coerce")
    else:
        raw = (pd.read_csv(path, sep="::", engine="python", header=None, encoding="latin-1",
                           names=["id", "title", "genres"]) if name == "movies.dat"
               else pd.read_csv(path).rename(columns={"movieId": "id"}))
        genres = raw["genres"].where(raw["genres"] != "(no genres listed)", "")
        ids = raw["id"]
        year = pd.to_numeric(raw["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    year = year.fillna(year.median()).astype(float)
    return pd.DataFrame({"genres": list(genres), "year": year.to_numpy()},
                        index=pd.Index(ids.to_numpy(np.int64), name="id"))


def movielens_features(name: str = "ml-100k", *, download: bool = True, **kwargs: Any
                       ) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """(user features, item features) of a MovieLens set, beside its ratings (see
    ``movielens_path`` for where they come from, and ``read_movielens_side`` for the
    columns). Sets without a user file (ml-10m on, ml-20m, ml-25m, ml-latest-small) give
    None for the users.

    Examples
    --------
    >>> import mfcore
    >>> from mfcore import datasets
    >>> try:
    ...     users, items = datasets.movielens_features("ml-100k", download=False)
    ... except mfcore.DataUnavailableError:
    ...     users = items = None
    >>> users is None or list(users.columns) == ["gender", "age", "occupation", "zip"]
    True
    """
    key = _canonical(name)
    folder = os.path.dirname(movielens_path(key, download=download, **kwargs))
    found = {SIDE_FILES[f]: os.path.join(folder, f) for f in sorted(SIDE_FILES)
             if os.path.isfile(os.path.join(folder, f))}
    if "item" not in found:
        raise DataUnavailableError(f"MovieLens {key}: no item file ({', '.join(SIDE_FILES)}) "
                                   f"beside its ratings in {folder}")
    return (read_movielens_side(found["user"]) if "user" in found else None,
            read_movielens_side(found["item"]))
