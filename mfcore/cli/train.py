"""``mfcore train`` and ``mfcore tune``: every hyperparameter of the ``--algorithm`` is a flag
(read from the estimators' signatures, so a new one appears here by itself)."""
import argparse
import inspect
import sys
import time

from .. import progress
from ..estimators import ALGORITHMS
from ..ids import STR_KIND
from ..persistence import atomic_file
from ..search import MAX_EPOCHS, Search
from ..split import train_test_split
from ..io import RatingChunks
from .common import (CommandError, add_feature_options, add_reader_options, check_output,
                     feature_kwargs, flag, print_json, read, reader_options, say, status)

#: hyperparameters that are no flag: train and tune always start fresh (no --warm-start),
#: and --val is the one validation fraction
NOT_FLAGS = ("warm_start", "validation_fraction")
#: switches that may also take a value (--implicit alone, or --implicit user)
SWITCH_OR_VALUE = {"implicit": "a switch (both sides), or user / item / both"}
#: what a default of None means, for --help
NONE_MEANS = {"reg_bias": "same as --reg", "n_threads": "OMP_NUM_THREADS if set, else every CPU",
              "thin": "keep every sample (at most 2048 factor columns)",
              "seed": "fresh randomness"}


def _typed(estimator, name, text, parser):
    """A flag's text read by the --algorithm's own rule for that hyperparameter (its
    constraint's ``cli_type``); text that cannot be read is a usage error naming the rule."""
    if not isinstance(text, str) or name not in estimator.PARAMS:
        return text  # a bare switch (--implicit) is already True; an unknown name is refused later
    constraint = estimator.PARAMS[name]
    try:
        return constraint.cli_type()(text.strip())
    except ValueError:
        parser.error(f"{flag(name)} takes {constraint}, got {text!r}")


def _algorithm_params(command=None):
    """name -> {algorithm: default} for every estimator's hyperparameters (read from the
    signatures, so new ones appear here); for ``tune`` the epoch limit its trials run."""
    table = {}
    for algo, cls in ALGORITHMS.items():
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name != "self":
                default = p.default
                if (command == "tune" and name == cls.epochs_param
                        and "early_stopping" in cls.capabilities):
                    default = MAX_EPOCHS
                table.setdefault(name, {})[algo] = default
    return table


def _add_algorithm_option(parser):
    names = [f"{name} (mfcore.{cls.__name__}{', the default' if name == 'sgd' else ''})"
             for name, cls in ALGORITHMS.items()]
    parser.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="sgd",
                        help="the estimator: " + ", ".join(names))


def _see_help():
    """Where the hyperparameters of every --algorithm are documented."""
    return "see " + ", ".join(f"help(mfcore.{cls.__name__})" for cls in ALGORITHMS.values())


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
        if name in SWITCH_OR_VALUE:
            hyper.add_argument(flag(name), dest="param_" + name, nargs="?", const=True,
                               default=argparse.SUPPRESS, metavar="V",
                               help=f"{text}; {SWITCH_OR_VALUE[name]}")
        elif all(isinstance(d, bool) for d in defaults.values()):
            hyper.add_argument(flag(name), dest="param_" + name,
                               action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        else:
            hyper.add_argument(flag(name), dest="param_" + name,
                               default=argparse.SUPPRESS, metavar="V", help=text)


def _model_from_flags(args):
    """The --algorithm estimator with the hyperparameter flags given; a bad value or a flag
    of another algorithm is a usage error."""
    estimator = ALGORITHMS[args.algorithm]
    params = {k[len("param_"):]: v for k, v in vars(args).items() if k.startswith("param_")}
    params = {name: _typed(estimator, name, v, args.parser) for name, v in params.items()}
    valid = estimator._param_names()
    foreign = [name for name in params if name not in valid]
    if foreign:
        args.parser.error(f"{flag(foreign[0])} does not apply to --algorithm "
                          f"{args.algorithm}")
    model = estimator()
    try:
        model.set_params(**params)._checked_params()
    except ValueError as exc:
        args.parser.error(say(exc))
    return model


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
    p.add_argument("--times", action="store_true",
                   help="train on the file's timestamp column too: the time terms of "
                   "--algorithm bayes (--time-terms; see mfcore.timeterms); evaluate and "
                   "predict then use the timestamps of their files")
    add_feature_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_algorithm_option(p)
    _add_hyper_options(p, f"hyperparameters ({_see_help()})", "train")
    add_reader_options(p)
    p.set_defaults(func=run_train)


def run_train(args):
    model = _model_from_flags(args)
    if args.val is not None and not 0 < args.val < 1:
        args.parser.error(f"--val must be a fraction between 0 and 1, got {args.val}")
    check_output(args.output, "-o")
    if args.times and "times" not in model.capabilities:
        args.parser.error(f"--times needs an estimator with time terms (--algorithm bayes), "
                          f"not --algorithm {args.algorithm}")
    if (args.user_features or args.item_features) and not model.supports("features"):
        args.parser.error(f"--user-features/--item-features need an estimator that takes side "
                          f"features (--algorithm als or bayes), not --algorithm {args.algorithm}")
    if _streams(args, model):
        validation, seconds = None, _fit_streamed(args, model)
        n_ratings = model.n_ratings_  # (duplicates merged)
    else:
        validation, seconds, n_ratings = _fit_read(args, model)
    model.save(args.output)
    print(f"trained on {n_ratings:,} ratings ({len(model.user_map_):,} users, "
          f"{len(model.item_map_):,} items): {type(model).__name__} k={model.k}, "
          f"{model.n_epochs_} {model.epoch_word} in {seconds:.2f} s")
    print(f"  {model.stop_reason_}")
    if validation is not None:
        scores = model.evaluate(*validation[:3], **({"times": validation[3]} if args.times
                                                       else {}))
        print(f"validation ({len(validation[0]):,} ratings): RMSE {scores['rmse']:.4f}  "
              f"MAE {scores['mae']:.4f}"
              + (f"  (best epoch {model.best_epoch_})" if model.best_epoch_ is not None else ""))
    print(f"wrote {args.output}")


def _streams(args, model):
    """Whether ``train`` streams the file into the layout (``RatingChunks``): an estimator
    with that capability, a file (not standard input), and nothing that needs the ratings
    in memory (--val, --times, side features)."""
    return (model.supports("streaming") and args.ratings != "-" and args.val is None
            and not args.times and not (args.user_features or args.item_features))


def _fit_streamed(args, model):
    """Fit ``model`` on the file read a chunk at a time; returns the seconds."""
    limit = model.max_epochs(model._checked_params())
    status(args, f"training {type(model).__name__} (--algorithm {args.algorithm}, --k {model.k}) "
           f"on {args.ratings}, read a chunk at a time: up to {limit} {model.epoch_word} ...")
    start = time.perf_counter()
    model.fit(RatingChunks(args.ratings, **reader_options(args)))
    return time.perf_counter() - start


def _fit_read(args, model):
    """Fit ``model`` on the file read whole (with --val's split); returns (the validation
    rows or None, the seconds, the ratings read less the validation ones)."""
    data = read(args, args.ratings)
    features = feature_kwargs(args, {side: "int" if data[side].dtype.kind in "iu" else STR_KIND
                                     for side in ("user", "item")})
    if args.times and "timestamp" not in data:
        raise CommandError(f"--times: {args.ratings} has no timestamp column (user, item, "
                           "rating, timestamp)")
    validation = None
    if args.val is not None:
        data, val = train_test_split(data, args.val, seed=args.split_seed)
        validation = (val["user"], val["item"], val["rating"]) + (
            (val["timestamp"],) if args.times else ())
    limit = model.max_epochs(model._checked_params())
    status(args, f"training {type(model).__name__} (--algorithm {args.algorithm}, --k {model.k}) "
           f"on {len(data):,} ratings: up to {limit} {model.epoch_word} ...")
    start = time.perf_counter()
    model.fit(data["user"], data["item"], data["rating"], validation=validation, **features,
              **({"times": data["timestamp"]} if args.times else {}))
    return validation, time.perf_counter() - start, len(data)


# --- tune -------------------------------------------------------------------------------

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
                    for algo, grid in ((a, c.default_grid) for a, c in ALGORITHMS.items()))
        + ".")
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
    _add_hyper_options(p, f"fixed hyperparameters (those not in the grid; {_see_help()})",
                       "tune")
    add_reader_options(p)
    p.set_defaults(func=run_tune)


def _parse_grid(args):
    """--grid NAME=V1,V2 options as a param_grid dict (the default grid when none)."""
    if not ALGORITHMS[args.algorithm].default_grid:  # declares no grid: not a rating model
        args.parser.error(f"tune scores held-out RMSE, and --algorithm {args.algorithm} "
                          "declares no grid (it predicts preference scores, not ratings): "
                          "tune it by a ranking metric (mfcore.metrics.ranking_metrics) instead")
    if not args.grid:
        return dict(ALGORITHMS[args.algorithm].default_grid)
    grid = {}
    for text in args.grid:
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            args.parser.error(f"--grid takes NAME=V1,V2,..., got {text!r}")
        if name in grid:
            args.parser.error(f"--grid names {name!r} twice")
        grid[name] = [_typed(ALGORITHMS[args.algorithm], name, v, args.parser)
                      for v in values.split(",") if v.strip()]
    return grid


def _search_from_flags(args):
    """The Search the flags describe (checked: a bad grid or option is a usage error) and its
    grid points."""
    grid = _parse_grid(args)
    base = _model_from_flags(args)
    if base.supports("early_stopping") and "param_" + base.epochs_param not in vars(args):
        # trials stop early: the epoch count is only their limit
        base.set_params(**{base.epochs_param: MAX_EPOCHS})
    if not 0 < args.val < 1:
        args.parser.error(f"--val must be a fraction between 0 and 1, got {args.val}")
    if args.cv is not None and args.cv < 2:
        args.parser.error(f"--cv must be at least 2 folds, got {args.cv}")
    if args.n_iter is not None and args.n_iter < 1:
        args.parser.error(f"--n-iter must be at least 1, got {args.n_iter}")
    search = Search(grid, n_iter=args.n_iter, cv=args.cv, validation_fraction=args.val,
                    base=base, refit=args.output is not None, seed=args.split_seed,
                    callback=_TrialLines(print_lines=not args.json and not args.quiet))
    try:
        return search, search.check()
    except ValueError as exc:
        args.parser.error(say(exc))


class _TrialLines:
    """Search's callback: a line per finished trial, in command-line terms (unless quiet),
    and each failure's reason in those terms (``spelled``: library text -> CLI text)."""

    def __init__(self, print_lines):
        self.print_lines = print_lines
        self.spelled = {}

    def __call__(self, number, total, result, error):
        if error is not None:
            self.spelled[str(error)] = say(error)
        if self.print_lines:
            outcome = (f"failed: {say(error)}" if error is not None else
                       f"val RMSE {result['val_rmse']:.4f} (best epoch {result['best_epoch']}, "
                       f"{result['seconds']:.1f} s)")
            progress.write(f"trial {number}/{total}: {_trial_flags(result)} -> {outcome}")


#: the entries of a Search result that are no parameter
_SCORES = ("val_rmse", "val_rmse_std", "best_epoch", "seconds", "status", "error")


def _trial_flags(result):
    return " ".join(f"{flag(k)} {v:g}" if isinstance(v, float) else f"{flag(k)} {v}"
                    for k, v in result.items() if k not in _SCORES)


def run_tune(args):
    search, trials = _search_from_flags(args)
    check_output(args.output, "-o")
    check_output(args.results, "--results")
    data = read(args, args.ratings)
    scoring = f"{args.cv}-fold CV" if args.cv else f"a {args.val:g} validation split"
    status(args, f"searching {len(trials)} grid points of "
           f"{type(search.base).__name__} on {len(data):,} ratings, scored by {scoring} ...")
    start = time.perf_counter()
    search.fit(data["user"], data["item"], data["rating"])
    seconds = time.perf_counter() - start
    table = search.results_frame()
    spelled = search.callback.spelled
    table["error"] = table["error"].map(lambda text: spelled.get(text, text))
    if args.json:  # a failed trial's scores are null (JSON has no NaN)
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        print_json({"results": records, "best_params": search.best_params_,
                    "best_val_rmse": search.best_score_, "seconds": seconds})
    else:
        _print_trials(search, table, spelled, f"{len(table)} trials on {len(data):,} ratings, "
                      f"scored by {scoring}, in {seconds:.1f} s:")
    if args.output:
        search.best_model_.save(args.output)
        print(f"refit on all {len(data):,} ratings; wrote {args.output}",
              file=sys.stderr if args.json else sys.stdout)
    if args.results:  # last: a full disk here loses neither the table nor the model
        with atomic_file(args.results, "results file", text=True) as fh:
            table.to_csv(fh, index=False, float_format="%.6g")


def _print_trials(search, table, spelled, title):
    """The results table, each failed trial's error and the best parameters, as flags."""
    print(title)
    print(table.drop(columns="error").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for trial in search.results_:
        if trial["status"] == "failed":
            print(f"failed: {_trial_flags(trial)}: {spelled[trial['error']]}")
    print("best: " + " ".join(f"{flag(k)} {v}" for k, v in search.best_params_.items())
          + f"  (validation RMSE {search.best_score_:.4f})")
