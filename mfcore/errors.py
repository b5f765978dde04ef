"""Exceptions and warnings raised by mfcore."""
import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``.

    Examples
    --------
    >>> import mfcore
    >>> try:
    ...     mfcore.Model().predict([1], [2])
    ... except mfcore.NotFittedError as exc:
    ...     print(type(exc).__name__)
    NotFittedError
    """


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter (or option) whose value breaks its rule: ``name``, ``value`` and
    ``rule`` (the rule as text, e.g. "an integer >= 1"); the message is
    ``"<name> must be <rule>, got <value>"``. A ``ValueError`` and a ``TypeError``, as
    scikit-learn's ``InvalidParameterError``, whichever a caller catches.

    Examples
    --------
    >>> import mfcore
    >>> try:
    ...     mfcore.ALS(k=0).fit([1, 2], [1, 2], [4.0, 3.0])
    ... except mfcore.InvalidParameterError as exc:
    ...     print(exc.name, exc.value, "|", exc.rule)
    k 0 | an integer >= 1
    """

    def __init__(self, name, value, rule):
        self.name, self.value, self.rule = name, value, rule
        super().__init__(f"{name} must be {rule}, got {value!r}")

    def __reduce__(self):  # pickles (a Dask worker's error) with its fields
        return InvalidParameterError, (self.name, self.value, self.rule)


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or parameter (learning rate too large).

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> try:
    ...     mfcore.Model(lr=50, epochs=5).fit(ratings.user, ratings.item, ratings.rating)
    ... except mfcore.TrainingDivergedError as exc:
    ...     print("diverged")
    diverged
    """


class ModelFileError(ValueError):
    """A model file is missing, truncated, foreign, tampered with or of an unknown version.

    Examples
    --------
    >>> import os, tempfile
    >>> import mfcore
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_model.mfz")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("hello")
    >>> try:
    ...     mfcore.load(path)
    ... except mfcore.ModelFileError:
    ...     print("refused")
    refused
    """

    def __init__(self, message=""):
        # what a crafted file puts in a message (a 200,000-character name) is cut; a cut
        # message (unpickled: a Dask worker's) is not cut again
        if isinstance(message, str) and len(message) > 1100:
            message = shown(message, limit=1000, quote=False)
        super().__init__(message)


class WorkerLostError(RuntimeError):
    """A Dask worker holding a shard of the training data left the cluster during a fit
    (``mfcore.dask.fit``); the estimator keeps the state it had before the call. The
    message names the worker and the iteration; retrying the fit on the cluster that is
    left is safe, because nothing of the failed fit was kept.

    Examples
    --------
    >>> import mfcore
    >>> issubclass(mfcore.WorkerLostError, RuntimeError)   # raised by mfcore.dask.fit
    True
    """


class UnknownIdError(KeyError):
    """An id the model does not know, where the caller asked for an error (a ``KeyError``).

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> model = mfcore.ALS(k=4, iterations=3).fit(ratings.user, ratings.item, ratings.rating)
    >>> try:
    ...     model.predict([999999], [1], unknown="error")
    ... except mfcore.UnknownIdError:
    ...     print("unknown user")
    unknown user
    """

    def __str__(self):  # the message as written, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""


class IdKindError(TypeError):
    """Ids of the other kind than the model's (strings for a model of integer ids, or the
    reverse)."""


class UnknownIdWarning(UserWarning):
    """Some ids passed to a fitted model were not seen in training.

    Examples
    --------
    >>> import warnings
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> model = mfcore.ALS(k=4, iterations=3).fit(ratings.user, ratings.item, ratings.rating)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = model.predict([999999], [1])
    >>> [w.category.__name__ for w in caught]
    ['UnknownIdWarning']
    """


class DuplicateRatingsWarning(UserWarning):
    """The training data held the same (user, item) pair more than once.

    Examples
    --------
    >>> import warnings
    >>> import mfcore
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = mfcore.ALS(k=2, iterations=2).fit([1, 1, 2], [1, 1, 2], [4.0, 2.0, 3.0])
    >>> "DuplicateRatingsWarning" in [w.category.__name__ for w in caught]
    True
    """


class ImplicitFeedbackWarning(UserWarning):
    """Every training rating has one value: the data say which items were chosen, not how well
    they were liked, and an explicit-rating model learns nothing from them beyond the mean.

    Examples
    --------
    Such data want a model of which items are chosen, :class:`mfcore.ImplicitALS`, which
    does not warn; a pipeline that must never fit a rating model to them can make the
    warning an error:

    >>> import warnings
    >>> import mfcore
    >>> users, items, clicks = [1, 2, 3], [1, 2, 1], [1.0, 1.0, 1.0]
    >>> model = mfcore.ImplicitALS(k=2, iterations=2).fit(users, items, clicks)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", mfcore.ImplicitFeedbackWarning)
    ...     try:
    ...         mfcore.ALS(k=2, iterations=2).fit(users, items, clicks)
    ...     except mfcore.ImplicitFeedbackWarning:
    ...         print("refused")
    refused
    """


class DataUnavailableError(OSError):
    """A data set is neither on disk nor downloadable (offline, or the download failed its check).

    Examples
    --------
    >>> import mfcore
    >>> issubclass(mfcore.DataUnavailableError, OSError)   # raised by mfcore.datasets offline
    True
    """


class BadLinesWarning(UserWarning):
    """A rating file had malformed lines that were skipped on request.

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> import mfcore
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("1,10,4\\n1,20,five\\n2,10,3\\n")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     frame = mfcore.read_ratings(path, on_bad_lines="skip")
    >>> len(frame), [w.category.__name__ for w in caught]
    (2, ['BadLinesWarning'])
    """


class Setting:
    """An argument setting named in a message, such as ``lr=0.05`` or ``columns=[...]``.

    The library writes it ``name=text``; another front end (the command line) spells it its
    own way from ``name`` and ``value`` (``--lr 0.05``). ``Setting("member")``, with no value,
    names the argument alone (``member=``). ``text`` is the value as the message shows it
    (default ``repr(value)``)."""

    def __init__(self, name, value=None, text=None):
        self.name, self.value = name, value
        self.text = text if text is not None else ("" if value is None else repr(value))

    def __repr__(self):
        return f"Setting({self.name!r}, {self.value!r})"

    def __str__(self):
        return f"{self.name}={self.text}"


class Message(str):
    """A message that keeps its parts beside its text, so that a front end can respell the
    argument settings in it: ``Message("try {0}", Setting("lr", 0.05))`` is the string
    ``'try lr=0.05'``, and ``spell(lambda s: f"--{s.name} {s.text}")`` gives
    ``'try --lr 0.05'``. Parts are formatted into ``template`` by ``str.format``; a part
    may be a ``Setting``, a ``Message`` (spelled in turn) or any value."""

    def __new__(cls, template, *parts):
        self = super().__new__(cls, template.format(*parts))
        self.template, self.parts = template, parts
        return self

    def __reduce__(self):  # pickles (a Dask worker's error) with its parts
        return Message, (self.template, *self.parts)

    def spell(self, spelling):
        """The text with each Setting written as ``spelling(setting)`` returns."""
        return self.template.format(*(
            part.spell(spelling) if isinstance(part, Message) else
            spelling(part) if isinstance(part, Setting) else part for part in self.parts))


#: the most characters of one value a message quotes (a megabyte line must not become a
#: megabyte message)
SHOWN_CHARS = 200


def shown(value, limit=SHOWN_CHARS, quote=True):
    """``repr(value)`` (``quote=False``: the text itself) for a message, cut to about
    ``limit`` characters: a longer text keeps its start and end and says how long it was.

    >>> shown("5" * 1000, limit=20)
    "'5555555555'...'5555555555' (1,000 characters)"
    """
    text = value if not quote and isinstance(value, str) else None
    if not isinstance(value, (str, bytes)) or len(value) <= limit:
        return text if text is not None else repr(value)
    half = limit // 2
    if text is not None:
        return f"{text[:half]}...{text[-half:]} ({len(text):,} characters)"
    return f"{value[:half]!r}...{value[-half:]!r} ({len(value):,} characters)"


def warn(message, category):
    """Warn, attributed to the first caller outside mfcore (the line of the user's code)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2: the caller of warn()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
