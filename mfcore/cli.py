"""The command line: ``mfcore <command> ...`` (or ``python -m mfcore <command> ...``).

Each command is one ``add_<name>(commands)`` function that declares its
arguments and sets ``func``, the function that runs it; ``COMMANDS`` lists
them in ``--help`` order. Adding a command is writing one such function and
listing it.

Exit codes: 0 success, 1 a bad or unreadable file or data, or training that
diverged (one line naming the problem, in command-line terms: ``--lr 0.5``, not
``lr=0.5``), 2 bad arguments (argparse's usage error), 130 interrupted. Output
paths are checked before any work. Progress (reading, training, trials) goes to
stderr: a bar on a terminal with tqdm installed (``mfcore.progress``), a line
per phase otherwise; ``-q`` silences it.
"""
import argparse
import contextlib
import inspect
import json
import os
import re
import sys
import time
import warnings

from . import __version__, datasets, openmp_enabled
from .errors import DataUnavailableError, ModelFileError, NotFittedError, TrainingDivergedError
from .estimators import ALGORITHMS
from .io import read_pairs, read_ratings
from .persistence import load
from .search import MAX_EPOCHS, Search
from .split import train_test_split, train_val_test_split

DEMO_SEED = 888        # the demo's split seed
DEMO_DOWNLOAD_TIMEOUT = 10.0
DEMO_MAX_EPOCHS = 200


class CommandError(Exception):
    """A problem the user can fix (a bad file, an unknown id...): printed, exit code 1."""


#: options of the library that the command line spells differently (the rest are --name)
_CLI_SPELLING = [
    (re.compile(r"columns=\[([^\]]*)\]"),
     lambda m: "--columns " + ",".join(v.strip(" '\"") for v in m.group(1).split(","))),
    (re.compile(r"\bcolumns="), lambda m: "--columns"),
    (re.compile(r"\bheader=False\b"), lambda m: "--no-header"),
    (re.compile(r"\bheader=True\b"), lambda m: "--header"),
    (re.compile(r"\bon_bad_lines=['\"]skip['\"]"), lambda m: "--skip-bad-lines"),
    (re.compile(r"\bexclude_seen=False\b"), lambda m: "--include-seen"),
    (re.compile(r"\bmember="), lambda m: "--member"),
    (re.compile(r"\bvalidation_fraction\b"), lambda m: "--val"),
    (re.compile(r"\bn_iter\b"), lambda m: "--n-iter"),
]


def _flag(name):
    return "--" + name.replace("_", "-")


def cli_terms(message):
    """A library message in command-line terms: ``lr=0.5`` -> ``--lr 0.5``, ``k must`` ->
    ``--k must``, ``ids='str'`` -> ``--ids str``, ``columns=[...]`` -> ``--columns ...``."""
    message = str(message)
    for pattern, spelling in _CLI_SPELLING:
        message = pattern.sub(spelling, message)
    names = sorted(set(_algorithm_params()) | {"ids", "unknown", "sep", "cv"}, key=len,
                   reverse=True)
    alternatives = "|".join(map(re.escape, names))
    # name=value (not inside a path or a longer word), and a message that starts "name must"
    keyword = re.compile(rf"(?<![\w/.\\-])({alternatives})=('[^']*'|\"[^\"]*\"|[^\s,;)]+)")
    message = keyword.sub(lambda m: f"{_flag(m.group(1))} {m.group(2).strip(chr(34) + chr(39))}",
                          message)
    return re.sub(rf"^({alternatives}) must\b", lambda m: f"{_flag(m.group(1))} must", message)


class _CLITermsStream:
    """A text stream that writes to ``target`` in command-line terms (``cli_terms``): the
    library's own progress lines (search trials) as the CLI's flags."""

    def __init__(self, target):
        self.target = target

    def write(self, text):
        return self.target.write(cli_terms(text))

    def flush(self):
        self.target.flush()

    def isatty(self):
        return self.target.isatty()


# --- shared helpers -------------------------------------------------------------------

def _value(text):
    """A hyperparameter value from the command line: none, true/false, int, float or text."""
    lower = text.strip().lower()
    if lower in ("none", "null"):
        return None
    if lower in ("true", "false"):
        return lower == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _add_reader_options(parser):
    group = parser.add_argument_group("reading rating files")
    group.add_argument("--sep", default=None,
                       help="field separator: '::', tab, ',', ';' or whitespace (default: detect)")
    group.add_argument("--header", dest="header", action="store_true", default=None,
                       help="the first line names the columns (default: detect)")
    group.add_argument("--no-header", dest="header", action="store_false",
                       help="the first line is data")
    group.add_argument("--skip-bad-lines", action="store_true",
                       help="drop malformed lines with a warning instead of failing")
    group.add_argument("--columns", default=None, metavar="NAMES",
                       help="the file's columns in order, from user, item, rating, timestamp "
                       "(e.g. --columns rating,user,item; default: from the header's names, "
                       "else user,item,rating[,timestamp])")
    group.add_argument("--ids", choices=("auto", "int", "str"), default=None,
                       help="id type (default: detect; for a model's file, the model's type)")
    group.add_argument("--member", default=None, metavar="NAME",
                       help="the file to read inside a .zip archive (default: its only file, "
                       "or its one ratings file)")


def _status(args, text):
    """A progress line on stderr (not with -q): what the command is doing now."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr, flush=True)


def _read(args, path, pairs=False, model=None):
    """Read a ratings (or pairs) file with the command's reader options."""
    ids = args.ids
    if ids is None:  # string-id models read '42' as the id '42', not the number 42
        kinds = {model.user_map_.kind, model.item_map_.kind} if model is not None else set()
        ids = "str" if kinds == {"str"} else "auto"
    reader = read_pairs if pairs else read_ratings
    sep = "\t" if args.sep == "tab" else args.sep
    _status(args, f"reading {path} ...")
    start = time.perf_counter()
    frame = reader(path, sep=sep, header=args.header, columns=args.columns, ids=ids,
                   on_bad_lines="skip" if args.skip_bad_lines else "error", member=args.member)
    _status(args, f"read {len(frame):,} {'pairs' if pairs else 'ratings'} in "
            f"{time.perf_counter() - start:.1f} s")
    return frame


def _check_output(path, flag):
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    if os.path.isdir(path):
        raise CommandError(f"{flag} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CommandError(f"{flag} {path}: not writable (permission denied)")


def _load_model(path):
    model = load(path)
    if not hasattr(model, "user_factors_"):
        raise CommandError(f"{path} holds an unfitted model; train one with 'mfcore train'")
    return model


#: hyperparameters that are no flag: train and tune always start fresh (no --warm-start),
#: and --val is the one validation fraction
NOT_FLAGS = ("warm_start", "validation_fraction")
#: switches that may also take a value (--implicit alone, or --implicit user)
SWITCH_OR_VALUE = {"implicit": "a switch (both sides), or user / item / both"}
#: what a default of None means, for --help
NONE_MEANS = {"reg_bias": "same as --reg", "n_threads": "OMP_NUM_THREADS if set, else every CPU",
              "thin": "keep every sample (at most 2048 factor columns)",
              "seed": "fresh randomness"}


def _algorithm_params(command=None):
    """name -> {algorithm: default} for every estimator's hyperparameters (read from the
    signatures, so new ones appear here); for ``tune`` the epoch limit its trials run."""
    table = {}
    for algo, cls in ALGORITHMS.items():
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name != "self":
                default = p.default
                if command == "tune" and name == cls.EPOCHS and _stops_early(cls):
                    default = MAX_EPOCHS
                table.setdefault(name, {})[algo] = default
    return table


def _stops_early(cls):
    return "n_iter_no_change" in inspect.signature(cls.__init__).parameters


def _add_algorithm_option(parser):
    parser.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="sgd",
                        help="the estimator: sgd (mfcore.Model, the default), als (mfcore.ALS) or "
                        "bayes (mfcore.BayesianMF)")


def _print_json(obj):
    print(json.dumps(obj, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# --- train ------------------------------------------------------------------------------

def add_train(commands):
    p = commands.add_parser("train", help="train a model on a ratings file and save it",
                            description="Train a model on a ratings file and save it. Every "
                            "hyperparameter of the --algorithm is a flag (--k 64 --reg 0.05 ...).")
    p.add_argument("ratings", help="ratings file (user, item, rating[, timestamp])")
    p.add_argument("-o", "--output", required=True, help="model file to write (e.g. model.mfz)")
    p.add_argument("--val", type=float, default=None, metavar="FRACTION",
                   help="hold out this random fraction as validation data: early stopping "
                   "on it, and its RMSE is reported (the held-out ratings are not trained on; "
                   "default: train on all, no early stopping)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the --val split (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_algorithm_option(p)
    _add_hyper_options(p, "hyperparameters (see help(mfcore.Model), help(mfcore.ALS), "
                       "help(mfcore.BayesianMF))", "train")
    _add_reader_options(p)
    p.set_defaults(func=run_train)


def _default_text(name, value):
    if value is None and name in NONE_MEANS:
        return NONE_MEANS[name]
    if isinstance(value, bool):
        return "default on" if value else "default off"
    return f"default {value}"


def _add_hyper_options(parser, title, command):
    """One flag per hyperparameter of any algorithm (--k 64 --reg 0.05 ...); a True/False
    one is a switch (--verbose, --no-count-weighted)."""
    hyper = parser.add_argument_group(title)
    for name, defaults in _algorithm_params(command).items():
        if name in NOT_FLAGS or (command == "tune" and name == "verbose"):
            continue
        texts = {algo: _default_text(name, d) for algo, d in defaults.items()}
        if len(set(texts.values())) == 1 and len(defaults) == len(ALGORITHMS):
            text = next(iter(texts.values()))
        else:
            text = ", ".join(f"{algo}: {t}" for algo, t in texts.items())
        flag = _flag(name)
        if name in SWITCH_OR_VALUE:
            hyper.add_argument(flag, dest="param_" + name, nargs="?", const=True, type=_value,
                               default=argparse.SUPPRESS, metavar="V",
                               help=f"{text}; {SWITCH_OR_VALUE[name]}")
        elif all(isinstance(d, bool) for d in defaults.values()):
            hyper.add_argument(flag, dest="param_" + name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        else:
            hyper.add_argument(flag, dest="param_" + name, type=_value,
                               default=argparse.SUPPRESS, metavar="V", help=text)


def _model_from_flags(args):
    """The --algorithm estimator with the hyperparameter flags given; a bad value or a flag
    of another algorithm is a usage error."""
    estimator = ALGORITHMS[args.algorithm]
    params = {k[len("param_"):]: v for k, v in vars(args).items() if k.startswith("param_")}
    valid = estimator._param_names()
    foreign = [name for name in params if name not in valid]
    if foreign:
        args.parser.error(f"{_flag(foreign[0])} does not apply to --algorithm "
                          f"{args.algorithm}")
    model = estimator()
    try:
        model.set_params(**params)._checked_params()
    except ValueError as exc:
        args.parser.error(cli_terms(exc))
    return model


def run_train(args):
    model = _model_from_flags(args)
    if args.val is not None and not 0 < args.val < 1:
        args.parser.error(f"--val must be a fraction between 0 and 1, got {args.val}")
    _check_output(args.output, "-o")
    data = _read(args, args.ratings)
    validation = None
    if args.val is not None:
        data, val = train_test_split(data, args.val, seed=args.split_seed)
        validation = (val["user"], val["item"], val["rating"])
    limit = getattr(model, model.EPOCHS)
    _status(args, f"training {type(model).__name__} (--algorithm {args.algorithm}, --k {model.k}) "
            f"on {len(data):,} ratings: up to {limit} {model.EPOCH_WORD} ...")
    start = time.perf_counter()
    model.fit(data["user"], data["item"], data["rating"], validation=validation)
    seconds = time.perf_counter() - start
    model.save(args.output)
    print(f"trained on {len(data):,} ratings ({len(model.user_map_):,} users, "
          f"{len(model.item_map_):,} items): {type(model).__name__} k={model.k}, "
          f"{model.n_epochs_} {model.EPOCH_WORD} in {seconds:.2f} s")
    print(f"  {model.stop_reason_}")
    if validation is not None:
        scores = model.evaluate(*validation)
        print(f"validation ({len(validation[0]):,} ratings): RMSE {scores['rmse']:.4f}  "
              f"MAE {scores['mae']:.4f}  (best epoch {model.best_epoch_})")
    print(f"wrote {args.output}")


# --- evaluate ---------------------------------------------------------------------------

def add_evaluate(commands):
    p = commands.add_parser("evaluate", help="RMSE and MAE of a model on a ratings file")
    p.add_argument("model", help="model file written by 'mfcore train'")
    p.add_argument("ratings", help="held-out ratings file")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_reader_options(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args):
    _status(args, f"loading {args.model} ...")
    model = _load_model(args.model)
    data = _read(args, args.ratings, model=model)
    _status(args, f"evaluating on {len(data):,} ratings ...")
    scores = model.evaluate(data["user"], data["item"], data["rating"])
    if args.json:
        _print_json(scores)
        return
    print(f"RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}  on {scores['n']:,} ratings "
          f"({scores['unknown_users']} unknown users, {scores['unknown_items']} unknown items)")


# --- predict ----------------------------------------------------------------------------

def add_predict(commands):
    p = commands.add_parser("predict", help="predicted ratings for user/item pairs, as CSV",
                            description="Predict ratings for user/item pairs given in a file "
                            "(user, item[, rating...]) or with --user/--item; writes CSV.")
    p.add_argument("model", help="model file written by 'mfcore train'")
    p.add_argument("pairs", nargs="?", help="file of user, item pairs (a rating column is kept)")
    p.add_argument("--user", nargs="+", default=None, help="user ids (with --item)")
    p.add_argument("--item", nargs="+", default=None, help="item ids, one per --user id")
    p.add_argument("-o", "--output", default=None, help="CSV file to write (default: stdout)")
    p.add_argument("--unknown", choices=("fallback", "nan", "error"), default="fallback",
                   help="unknown ids: predict from the biases that are known (default), "
                   "write nan, or fail")
    _add_reader_options(p)
    p.set_defaults(func=run_predict)


def _ids_for(idmap, values):
    """Command-line id strings as the model's id type."""
    if idmap.kind == "str":
        return list(values)
    try:
        return [int(v) for v in values]
    except ValueError as exc:
        raise CommandError(f"the model's ids are integers: {exc}") from exc


def run_predict(args):
    import pandas as pd

    if (args.pairs is None) == (args.user is None):
        args.parser.error("give either a pairs file or --user/--item ids")
    if (args.user is None) != (args.item is None):
        args.parser.error("--user and --item go together")
    if args.user is not None and len(args.user) != len(args.item):
        args.parser.error(f"{len(args.user)} --user ids but {len(args.item)} --item ids")
    _check_output(args.output, "-o")
    model = _load_model(args.model)
    if args.pairs is not None:
        frame = _read(args, args.pairs, pairs=True, model=model)
    else:
        frame = pd.DataFrame({"user": _ids_for(model.user_map_, args.user),
                              "item": _ids_for(model.item_map_, args.item)})
    pred = model.predict(frame["user"], frame["item"], unknown=args.unknown)
    out = frame[["user", "item"] + (["rating"] if "rating" in frame else [])].copy()
    out["prediction"] = pred
    if args.output:
        out.to_csv(args.output, index=False, float_format="%.4f")
        print(f"wrote {len(out):,} predictions to {args.output}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False, float_format="%.4f")


# --- info -------------------------------------------------------------------------------

def add_info(commands):
    p = commands.add_parser("info", help="what a model file holds")
    p.add_argument("model", help="model file")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run_info)


def run_info(args):
    model = load(args.model)
    info = {"file": args.model, "bytes": os.path.getsize(args.model),
            "fitted": hasattr(model, "user_factors_"), "params": model.get_params()}
    if info["fitted"]:
        history = getattr(model, "history_", []) or []
        info.update({
            "users": len(model.user_map_), "items": len(model.item_map_),
            "id_kind": model.user_map_.kind, "ratings_trained_on": model.n_ratings_,
            "factors": list(model.user_factors_.shape[1:]),
            "global_mean": model.global_mean_, "rating_range": list(model.rating_range_),
            "epochs_run": len(history), "best_epoch": getattr(model, "best_epoch_", None),
            "last_train_rmse": history[-1].get("train_rmse") if history else None,
            "stop_reason": getattr(model, "stop_reason_", None),
        })
    if args.json:
        _print_json(info)
        return
    print(f"{args.model}: mfcore model, {info['bytes']:,} bytes, "
          f"{'fitted' if info['fitted'] else 'not fitted'}")
    if info["fitted"]:
        print(f"  {info['users']:,} users x {info['items']:,} items ({info['id_kind']} ids), "
              f"trained on {info['ratings_trained_on']:,} ratings")
        print(f"  global mean {info['global_mean']:.4f}, ratings {info['rating_range'][0]:g}.."
              f"{info['rating_range'][1]:g}, {info['epochs_run']} {model.EPOCH_WORD}"
              + (f", best epoch {info['best_epoch']}" if info["best_epoch"] else "")
              + (f", last train RMSE {info['last_train_rmse']:.4f}"
                 if info["last_train_rmse"] is not None else ""))
        if info["stop_reason"]:
            print(f"  training {info['stop_reason']}")
    print("  params: " + ", ".join(f"{k}={v!r}" for k, v in info["params"].items()))


# --- demo -------------------------------------------------------------------------------

def add_demo(commands):
    p = commands.add_parser("demo", help="train and evaluate on MovieLens 100K (or synthetic data)",
                            description="Train and evaluate on MovieLens 100K with a fixed "
                            "protocol: a random 80/10/10 train/validation/test split of all "
                            f"100,000 ratings (seed {DEMO_SEED}), mfcore.Model with k=20 and "
                            "the other defaults, up to "
                            f"{DEMO_MAX_EPOCHS} epochs with early stopping on the validation "
                            "part (the best epoch kept); print validation and test RMSE and "
                            "MAE, the fit time and a few test predictions beside the true "
                            "ratings. Without the real data it says so and uses synthetic "
                            "MovieLens-1M-shaped data.")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even if the real "
                   "set is available")
    p.add_argument("--no-download", action="store_true", help="do not try to download MovieLens")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help=f"split seed (default {DEMO_SEED})")
    p.set_defaults(func=run_demo)


def _demo_data(args):
    """(DataFrame, description): MovieLens 100K if it can be had, else synthetic ML-1M."""
    reason = "--synthetic was given"
    if not args.synthetic:
        try:
            path = datasets.movielens_path(
                "ml-100k", download=not args.no_download, timeout=DEMO_DOWNLOAD_TIMEOUT,
                progress=lambda line: print(f"MovieLens 100K is not on this machine; {line}",
                                            flush=True))
            return datasets.movielens("ml-100k", download=False), f"MovieLens 100K ({path})"
        except (OSError, ValueError) as exc:  # offline, no cache folder, an edited copy...
            reason = str(exc)
    print(f"MovieLens 100K unavailable: {reason}")
    print("Running on synthetic MovieLens-1M-shaped data instead "
          "(set MFCORE_DATA to a folder holding ml-100k/u.data to use the real set).")
    return datasets.synthetic("ml-1m", seed=0), "synthetic ML-1M-shaped data"


def run_demo(args):

    data, name = _demo_data(args)
    train, val, test = train_val_test_split(data, 0.1, 0.1, seed=args.seed)
    print(f"data: {name}: {len(data):,} ratings, {data['user'].nunique():,} users, "
          f"{data['item'].nunique():,} items")
    print(f"split: random 80/10/10 (seed {args.seed}): {len(train):,} train, "
          f"{len(val):,} validation, {len(test):,} test")
    model = ALGORITHMS["sgd"](k=20, epochs=DEMO_MAX_EPOCHS)  # early stopping on validation ends it
    _status(args, f"training k=20 for up to {DEMO_MAX_EPOCHS} epochs, stopping early on the "
            "validation part ...")
    start = time.perf_counter()
    model.fit(train["user"], train["item"], train["rating"],
              validation=(val["user"], val["item"], val["rating"]))
    seconds = time.perf_counter() - start
    print(f"fit: k=20, {model.n_epochs_} epochs in {seconds:.2f} s (OpenMP "
          f"{'on' if openmp_enabled() else 'off'}); {model.stop_reason_}")
    for label, part in (("validation", val), ("test", test)):
        scores = model.evaluate(part["user"], part["item"], part["rating"])
        print(f"{label:>10} RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}")
    sample = test.sample(5, random_state=args.seed)
    pred = model.predict(sample["user"], sample["item"])
    print("a few test ratings:")
    for (user, item, true), guess in zip(sample[["user", "item", "rating"]].itertuples(index=False),
                                        pred):
        print(f"  user {user:>5}  item {item:>5}  true {true:g}  predicted {guess:.2f}")


# --- recommend / similar ---------------------------------------------------------------

def add_recommend(commands):
    p = commands.add_parser("recommend", help="top-N items for users, as CSV",
                            description="The N items with the highest predicted rating for each "
                            "user, skipping the items the user rated in training. Writes CSV: "
                            "user, rank, item, score (the predicted rating, unclipped).")
    p.add_argument("model", help="model file written by 'mfcore train'")
    p.add_argument("users", nargs="+", help="user ids")
    p.add_argument("-n", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true",
                   help="also recommend items the user rated in training")
    p.add_argument("--unknown", choices=("fallback", "error"), default="fallback",
                   help="a user the model does not know: the most-rated items in training "
                   "(default, with a warning) or fail")
    p.set_defaults(func=run_recommend)


def _write_ranked(header, queries, items, scores):
    """CSV rows query, rank, id, score; padded slots (score NaN) are left out."""
    import csv

    import numpy as np

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for query, row_items, row_scores in zip(queries, items, scores):
        for rank, (item, score) in enumerate(zip(row_items, row_scores), start=1):
            if not np.isnan(score):
                writer.writerow([query, rank, item, f"{score:.4f}"])


def run_recommend(args):
    if args.n < 1:
        args.parser.error(f"-n must be at least 1, got {args.n}")
    model = _load_model(args.model)
    users = _ids_for(model.user_map_, args.users)
    items, scores = model.recommend(users, n=args.n, exclude_seen=not args.include_seen,
                                    unknown=args.unknown)
    _write_ranked(["user", "rank", "item", "score"], users, items, scores)


def add_similar(commands):
    p = commands.add_parser("similar", help="most similar items (or users), as CSV",
                            description="The N items whose factors have the highest cosine "
                            "similarity to each given item (with --users: users to users). "
                            "Writes CSV: query, rank, similar id, similarity.")
    p.add_argument("model", help="model file written by 'mfcore train'")
    p.add_argument("ids", nargs="+", help="item ids (user ids with --users)")
    p.add_argument("-n", type=int, default=10, help="similar ids per query (default 10)")
    p.add_argument("--users", action="store_true", help="similar users instead of items")
    p.set_defaults(func=run_similar)


def run_similar(args):
    if args.n < 1:
        args.parser.error(f"-n must be at least 1, got {args.n}")
    model = _load_model(args.model)
    kind = "user" if args.users else "item"
    ids = _ids_for(getattr(model, f"{kind}_map_"), args.ids)
    find = model.similar_users if args.users else model.similar_items
    similar, scores = find(ids, n=args.n)
    _write_ranked([kind, "rank", "similar", "similarity"], ids, similar, scores)


# --- tune -------------------------------------------------------------------------------

#: The default grid of each --algorithm.
TUNE_GRIDS = {"sgd": {"k": [64, 128], "reg": [0.04, 0.06, 0.08, 0.1], "lr": [0.005, 0.01]},
              "als": {"k": [32, 64, 128], "reg": [0.05, 0.1, 0.2]},
              "bayes": {"k": [10, 32, 64]}}


def add_tune(commands):
    p = commands.add_parser(
        "tune", help="search hyperparameters on a ratings file, optionally save the best model",
        description="Grid or random search over the --algorithm's hyperparameters, scored by "
        "the RMSE on a "
        "validation split carved from the file (or by k-fold cross-validation), with early "
        "stopping in every trial. Prints the results table and the best parameters; with -o, "
        "refits them on the whole file and saves the model. Trials run at most 200 epochs "
        "(iterations) unless --epochs (--iterations) says otherwise. Default grids: "
        + "; ".join(f"{algo}: " + ", ".join(f"{k}={','.join(map(str, v))}" for k, v in grid.items())
                    for algo, grid in TUNE_GRIDS.items()) + ".")
    p.add_argument("ratings", help="ratings file (user, item, rating[, timestamp])")
    p.add_argument("--grid", action="append", default=None, metavar="NAME=V1,V2,...",
                   help="values to try for one hyperparameter; repeat for several "
                   "(e.g. --grid k=32,64 --grid reg=0.05,0.1); replaces the default grid")
    p.add_argument("--n-iter", type=int, default=None, metavar="N",
                   help="try N random grid points instead of the whole grid")
    p.add_argument("--val", type=float, default=0.1, metavar="FRACTION",
                   help="validation fraction of each trial (default 0.1)")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="score by K-fold cross-validation instead of one validation split")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the validation split, the folds and random draws (default 0)")
    p.add_argument("-o", "--output", default=None,
                   help="refit the best parameters on all ratings and save the model here")
    p.add_argument("--results", default=None, metavar="CSV", help="write every trial to a CSV")
    p.add_argument("--json", action="store_true", help="print the results and best as JSON")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no line per finished trial, no progress on stderr")
    _add_algorithm_option(p)
    _add_hyper_options(p, "fixed hyperparameters (those not in the grid; see help(mfcore.Model), "
                       "help(mfcore.ALS), help(mfcore.BayesianMF))", "tune")
    _add_reader_options(p)
    p.set_defaults(func=run_tune)


def _parse_grid(args):
    """--grid NAME=V1,V2 options as a param_grid dict (the default grid when none)."""
    if args.algorithm not in TUNE_GRIDS:  # tune scores RMSE, which a top-N model does not aim at
        args.parser.error(f"tune scores held-out RMSE, and --algorithm {args.algorithm} "
                          "predicts preference scores, not ratings: tune it by a ranking "
                          "metric (mfcore.metrics.ranking_metrics) instead")
    if not args.grid:
        return dict(TUNE_GRIDS[args.algorithm])
    grid = {}
    for text in args.grid:
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            args.parser.error(f"--grid takes NAME=V1,V2,..., got {text!r}")
        if name in grid:
            args.parser.error(f"--grid names {name!r} twice")
        grid[name] = [_value(v) for v in values.split(",") if v.strip()]
    return grid


def run_tune(args):
    grid = _parse_grid(args)
    base = _model_from_flags(args)
    if _stops_early(type(base)) and "param_" + base.EPOCHS not in vars(args):
        # trials stop early: the epoch count is only their limit
        base.set_params(**{base.EPOCHS: MAX_EPOCHS})
    if args.cv is not None and args.cv < 2:
        args.parser.error(f"--cv must be at least 2 folds, got {args.cv}")
    if args.n_iter is not None and args.n_iter < 1:
        args.parser.error(f"--n-iter must be at least 1, got {args.n_iter}")
    search = Search(grid, n_iter=args.n_iter, cv=args.cv, validation_fraction=args.val,
                    base=base, refit=args.output is not None, seed=args.split_seed,
                    verbose=not args.json and not args.quiet)
    try:
        trials = search.check()
    except ValueError as exc:
        args.parser.error(cli_terms(exc))
    _check_output(args.output, "-o")
    _check_output(args.results, "--results")
    data = _read(args, args.ratings)
    scoring = f"{args.cv}-fold CV" if args.cv else f"a {args.val:g} validation split"
    _status(args, f"searching {len(trials)} grid points of "
            f"{type(base).__name__} on {len(data):,} ratings, scored by {scoring} ...")
    start = time.perf_counter()
    with contextlib.redirect_stdout(_CLITermsStream(sys.stdout)):  # the trial lines
        search.fit(data["user"], data["item"], data["rating"])
    seconds = time.perf_counter() - start
    table = search.results_frame()
    table["error"] = table["error"].map(cli_terms)
    if args.results:
        table.to_csv(args.results, index=False, float_format="%.6g")
    if args.json:  # a failed trial's scores are null (JSON has no NaN)
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        _print_json({"results": records, "best_params": search.best_params_,
                     "best_val_rmse": search.best_score_, "seconds": seconds})
    else:
        print(f"{len(table)} trials on {len(data):,} ratings, scored by {scoring}, "
              f"in {seconds:.1f} s:")
        print(table.drop(columns="error").to_string(index=False,
                                                    float_format=lambda v: f"{v:.4f}"))
        scores = ("val_rmse", "val_rmse_std", "best_epoch", "seconds", "status", "error")
        for trial in search.results_:
            if trial["status"] == "failed":
                params = " ".join(f"{_flag(k)} {v}" for k, v in trial.items() if k not in scores)
                print(f"failed: {params}: {cli_terms(trial['error'])}")
        print("best: " + " ".join(f"{_flag(k)} {v}"
                                  for k, v in search.best_params_.items())
              + f"  (validation RMSE {search.best_score_:.4f})")
    if args.output:
        search.best_model_.save(args.output)
        print(f"refit on all {len(data):,} ratings; wrote {args.output}",
              file=sys.stderr if args.json else sys.stdout)


COMMANDS = [add_train, add_tune, add_evaluate, add_predict, add_recommend, add_similar, add_info,
            add_demo]


# --- entry point ------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(prog="mfcore",
                                     description="Biased matrix factorization for rating data.")
    parser.add_argument("--version", action="version", version=f"mfcore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS:
        add(commands)
    for sub in commands.choices.values():
        sub.set_defaults(parser=sub)
    return parser


def _run(args):
    """Run the command; warnings it raises (unknown ids, merged duplicates, skipped lines)
    are printed as ``mfcore <command>: warning: ...`` on stderr, even when it then fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            args.func(args)
        finally:
            for w in caught:
                print(f"mfcore {args.command}: warning: {cli_terms(w.message)}", file=sys.stderr)


def main(argv=None):
    """Run one command; return its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported with the command's own usage line, not the top-level one
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'mfcore predict ... | head': stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError:
        print(f"mfcore {args.command}: error: not enough memory (try a smaller --k, or fewer "
              "ratings)", file=sys.stderr)
        return 1
    except (CommandError, ModelFileError, NotFittedError, DataUnavailableError,
            TrainingDivergedError, OSError, ValueError, TypeError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        message = " ".join(cli_terms(message).split("\n"))   # one line
        print(f"mfcore {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
