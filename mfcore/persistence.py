"""Model files: one versioned, pickle-free ``.npz`` archive, written atomically.

Layout: ``format`` (the string ``mfcore-model``), ``version``, ``estimator``
(the registered name of the estimator that wrote it, e.g. ``sgd`` or ``als``;
see ``mfcore.registry``), ``params`` (JSON), ``fitted`` (bool), the model's
fitted arrays, and ``digest``: a SHA-256 over every other member's name,
dtype, shape and bytes. ``load`` reads with ``allow_pickle=False``, checks
format, version and digest, builds the named estimator (only registered
classes, never an arbitrary import), then lets it check shapes, dtypes and
consistency; anything wrong raises ``ModelFileError`` saying what. Files
written by earlier versions name the estimator by class (``Model``,
``ALS``, ``BayesianMF``) or, in version 1, not at all (``Model``'s).

The digest detects accidental corruption (a truncated copy, a flipped bit); it is
not a signature, since anyone who edits a file can recompute it. What keeps a
crafted file harmless is the rest: only regular files are opened, every member
must be stored (never inflated: a few compressed KB could expand to gigabytes)
and no larger than the file, nothing is unpickled, only registered classes are
built, and every value is checked, including magnitudes that would make
predictions overflow (``fitted.check_magnitudes``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import time
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from . import registry
from .errors import ModelFileError, shown

if TYPE_CHECKING:
    from ._typing import PathLike
    from .fitted import FactorModel

__all__ = ["save_model", "load", "migrate", "open_regular", "read_json", "atomic_file"]

FORMAT = "mfcore-model"
VERSION = 2
READABLE_VERSIONS = (1, 2)

#: The members of a model file besides its fitted state (``state.*``).
_MEMBERS = ("format", "version", "estimator", "params", "fitted", "digest")

#: The registered names of the estimators that earlier files name by class.
_CLASS_NAMES = {"Model": "sgd", "ALS": "als", "BayesianMF": "bayes"}


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _params_json(model):
    params = model.get_params()
    seed = params.get("seed")
    if isinstance(seed, np.random.Generator):
        params["seed"] = None  # a Generator's state is not a hyperparameter worth keeping
    try:
        return json.dumps(params)
    except TypeError as exc:
        raise ValueError(f"cannot save model: a hyperparameter is not JSON-serializable ({exc})") from exc


_TEMPORARY = re.compile(r"\.mfcore-(\d+)-[0-9a-f]{16}\.tmp")
#: seconds a dead writer's temporary file must have been left untouched before it is removed
STALE_AFTER = 600


def _remove_stale_temporaries(folder):
    """Remove temporary files that writers killed mid-write (SIGKILL, power loss) left in
    ``folder``: named by a process that no longer runs, untouched for ``STALE_AFTER``
    seconds (a writer on another machine sharing the folder keeps its file fresh)."""
    if os.name != "posix":
        return
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match is None or int(match[1]) == os.getpid():
            continue
        try:
            os.kill(int(match[1]), 0)
            continue   # its writer still runs
        except ProcessLookupError:
            pass
        except OSError:   # (running, but another user's)
            continue
        path = os.path.join(folder, name)
        try:
            if time.time() - os.stat(path).st_mtime > STALE_AFTER:
                os.unlink(path)
        except OSError:
            pass


@contextlib.contextmanager
def atomic_file(path, what, text=False):
    """Write ``path`` atomically: yields a file (binary, or UTF-8 text with ``text``) on a
    temporary file in the same folder, then flushes it to disk and renames it over
    ``path``. If anything fails or interrupts the block, the temporary is removed and
    ``path`` is untouched (a full disk never leaves half a file, nor destroys the old
    one); an ``OSError`` names ``what`` and the path. The new file keeps the mode of the
    file it replaces (a 0600 model stays 0600), else 0666 less the umask (mkstemp's
    0600 would hide it from other users and services). Every file mfcore writes (models,
    the CLI's predictions and search results) goes through here."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(folder)
    tmp = os.path.join(folder, f".mfcore-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise OSError(f"cannot write {what} {path!r}: {exc.strerror or exc}") from exc
    try:
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        with (os.fdopen(fd, "w", encoding="utf-8", newline="") if text
              else os.fdopen(fd, "wb")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(f"cannot write {what} {path!r}: {exc.strerror or exc}") from exc
        raise


def save_model(model, path, seen_items=True):
    """Write ``model`` to ``path`` atomically: a temporary file in the same folder, then rename;
    without the seen items (``seen_indptr``, ``seen_items``) unless ``seen_items``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write model file {path!r}: it is a folder; give a "
                                f"file name, e.g. {os.path.join(path, 'model.mfz')!r}")
    name = getattr(model, "name", None)
    if registry.ESTIMATORS.get(name) is not type(model):
        raise ValueError(f"cannot save a {type(model).__name__}: mfcore.load rebuilds only "
                         "registered estimators; give the class its own name and register it "
                         "(mfcore.estimators.register)")
    arrays = {"format": np.str_(FORMAT), "version": np.int64(VERSION),
              "estimator": np.str_(name), "params": np.str_(_params_json(model))}
    state = model._fitted_state()
    if state is not None and not seen_items:
        state = {name: value for name, value in state.items()
                 if name not in ("seen_indptr", "seen_items")}
    arrays["fitted"] = np.bool_(state is not None)
    for name, value in (state or {}).items():
        arrays["state." + name] = np.asarray(value)
    arrays["digest"] = np.str_(_digest(arrays))
    with atomic_file(path, "model file") as fh:
        np.savez(fh, **arrays)


#: zip compression methods by number, to name them in messages (np.savez writes "stored")
_ZIP_METHOD_NAMES = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                     zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 93: "zstandard"}


def _file_kind(mode):
    """What a non-regular file is, in words."""
    for test, kind in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "pipe (FIFO)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def open_regular(path, what):
    """``path`` opened for binary reading, refusing anything but a regular file.

    Opened without blocking, then checked on the open descriptor: a FIFO would block
    ``open`` forever and ``/dev/zero`` would be read without end. Raises
    ``FileNotFoundError`` for a missing path and ``ValueError`` naming the kind of a
    non-regular one (``what`` says what was expected, e.g. "a model file").
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path!r}") from None
    except IsADirectoryError:  # (Windows cannot open a folder)
        raise ValueError(f"{path!r} is a folder, not {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path!r} is a {_file_kind(mode)}, not {what} (only regular "
                             "files are read)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_members(path):
    try:
        fh = open_regular(path, "a model file")
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    with fh:
        if not zipfile.is_zipfile(fh):
            raise ModelFileError(f"{path!r} is not an mfcore model file (not an .npz archive; "
                                 "truncated or foreign?)")
        try:
            _check_members(fh, os.fstat(fh.fileno()).st_size)
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError,
                KeyError, MemoryError) as exc:  # (NotImplementedError: a zip version zipfile lacks)
            raise ModelFileError(f"{path!r} is corrupted or not an mfcore model file: {exc}") from exc


def _check_members(fh, file_size):
    """Raise ValueError unless every member is what ``save`` writes: stored (never
    compressed, so reading one costs no more than its bytes on disk; a compressed member
    of a few KB can inflate to gigabytes before any check sees it), unencrypted,
    named once, no larger together than the file, and holding exactly the data its .npy
    header declares. Nothing is inflated or allocated before these checks pass."""
    with zipfile.ZipFile(fh) as archive:
        infos, names = archive.infolist(), set()
        for info in infos:
            if not info.filename.endswith(".npy"):  # (np.load reads 'x' as key x, as 'x.npy')
                raise ValueError(f"member {shown(info.filename)} is not an array (.npy); model "
                                 "files hold .npy members only")
            if info.filename in names:
                raise ValueError(f"member {shown(info.filename)} appears twice")
            names.add(info.filename)
            if info.flag_bits & 0x1:
                raise ValueError(f"member {info.filename!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                method = _ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
                raise ValueError(f"member {info.filename!r} is compressed ({method}); model "
                                 "files hold stored members only")
            if info.compress_size != info.file_size:
                raise ValueError(f"member {info.filename!r} is stored in {info.compress_size:,} "
                                 f"bytes but declares {info.file_size:,}")
        declared = sum(info.file_size for info in infos)
        if declared > file_size:
            raise ValueError(f"its members declare {declared:,} bytes, more than the file's "
                             f"{file_size:,}")
        for info in infos:
            _check_npy_header(archive, info)


def _check_npy_header(archive, info):
    """Raise ValueError for a member whose .npy header declares more (or less) data than
    it holds, before anything is allocated (a tampered shape could ask for terabytes)."""
    try:
        opened = archive.open(info)
    except NotImplementedError as exc:  # a flag zipfile lacks (e.g. patched data)
        raise ValueError(f"member {info.filename!r}: {exc}") from None
    with opened as member:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"member {info.filename!r} has .npy version {version}")
        shape, _, dtype = read_header(member)
        held = info.file_size - member.tell()
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared != held:
            raise ValueError(f"member {info.filename!r} declares shape {shape} of "
                             f"{dtype} ({declared:,} bytes) but holds {held:,}")


def read_json(value, name):
    """The JSON document held by the text member ``name``; ``ValueError`` when it is not
    JSON or nests too deeply for the parser (a crafted file can nest 100,000 levels)."""
    try:
        return json.loads(str(value))
    except RecursionError:
        raise ValueError(f"{name} nests too deeply to be read") from None
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc})") from None


def migrate(state, version):
    """The fitted ``state`` of a file of format ``version`` in the current schema, so that
    nothing after loading asks which mfcore wrote it. Earlier files lack: the item counts
    and the seen items (optional: None, the model ranks unknown users by bias and cannot
    exclude seen items), the ratings' spread (they trained in rating units: 1) and the
    stop reason (None). Version 1 files are SGD's (``load`` reads the estimator's name)."""
    training = read_json(state["training"], "training")
    if not isinstance(training, dict):
        raise ValueError(f"training must be a JSON object, got {type(training).__name__}")
    training.setdefault("rating_scale", 1.0)
    training.setdefault("stop_reason", None)
    return dict(state, training=np.str_(json.dumps(training)))


def load(path: PathLike) -> FactorModel:
    """Read a model written by ``save``, as an object of the class that wrote it; never unpickles.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> import os, tempfile
    >>> model = mfcore.ALS(k=4, iterations=3, seed=0).fit(ratings.user, ratings.item, ratings.rating)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.mfz")
    >>> model.save(path)
    >>> same = mfcore.load(path)
    >>> type(same).__name__, bool((same.predict([1], [2]) == model.predict([1], [2])).all())
    ('ALS', True)
    """
    path = os.fspath(path)
    arrays = _read_members(path)
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ModelFileError(f"{path!r} is not an mfcore model file (no '{FORMAT}' marker)")
    version = arrays.get("version")
    if (version is None or version.shape != () or version.dtype.kind not in "iu"
            or int(version) not in READABLE_VERSIONS):
        raise ModelFileError(f"{path!r} has model format version "
                             f"{shown(' '.join(repr(version).split()), quote=False)}; "
                             f"this mfcore reads versions {READABLE_VERSIONS}")
    digest = arrays.pop("digest", None)
    if digest is None or str(digest) != _digest(arrays):
        raise ModelFileError(f"{path!r} failed its integrity check (modified or corrupted)")
    unknown = [key for key in arrays if key not in _MEMBERS and not key.startswith("state.")]
    if unknown:  # (the model checks the state.* members it knows and refuses the others)
        raise ModelFileError(f"{path!r} holds a member {shown(unknown[0])}, which mfcore "
                             "never writes (a crafted or foreign file?)")
    name = str(arrays["estimator"]) if int(version) >= 2 and "estimator" in arrays else "Model"
    name = _CLASS_NAMES.get(name, name)
    if name not in registry.ESTIMATORS:
        raise ModelFileError(f"{path!r} was written by estimator {shown(name)}, which this mfcore "
                             f"does not have (known: {', '.join(registry.ESTIMATORS)})")
    try:
        params = read_json(arrays["params"], "params")
        if not isinstance(params, dict):
            raise ValueError(f"params must be a JSON object, got {type(params).__name__}")
        model = registry.ESTIMATORS[name]()
        model.set_params(**params)
        model._checked_params()
        if bool(arrays["fitted"]):
            prefix = "state."
            state = {key[len(prefix):]: value for key, value in arrays.items()
                     if key.startswith(prefix)}
            model._restore_fitted_state(migrate(state, int(version)))
    except (LookupError, ValueError, TypeError, OverflowError) as exc:  # (a bad generator state
        # overflows numpy's setter)
        raise ModelFileError(f"{path!r} holds an inconsistent model: {exc}") from exc
    return model
