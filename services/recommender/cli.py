"""Offline commands: ``train``, ``decide``, ``evaluate`` and ``models list|promote|rollback``.

Only wiring lives here: read files, call ``training`` / ``registry``, print. The time is
read once per command, here, and passed down.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.recommender import training
from services.recommender.logs import (
    LogFormatError,
    parse_candidates,
    parse_context,
    read_jsonl,
    read_log,
)
from services.recommender.model_store import ModelStoreError, load_model, save_model
from services.recommender.policies import PersonalizedPolicy
from services.recommender.registry import (
    ModelRegistry,
    PromotionGate,
    PromotionRefused,
    RegistryError,
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _fail(console: Console, message: str) -> int:
    console.print(f"[bold red]error:[/] {message}")
    return 1


def _fmt(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _estimate_cell(estimate: Any) -> str:
    if estimate is None:
        return "-"
    return f"{_fmt(estimate.value)} [{_fmt(estimate.ci_low)}, {_fmt(estimate.ci_high)}]"


def _load_personalized(console: Console, directory: str) -> PersonalizedPolicy | None:
    stored = load_model(directory)
    if not isinstance(stored.model, PersonalizedPolicy):
        console.print(f"[bold red]error:[/] {directory} holds a {stored.kind} model, not a "
                      "trained policy")
        return None
    return stored.model


# -- train -------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    console = Console()
    try:
        with _progress(console) as progress:
            task = progress.add_task("reading the log", total=4)
            log = read_log(args.log) if args.log else _log_from_stream(args, progress, task)
            progress.update(task, advance=1, description=f"fitting on {len(log)} decisions")
            current = _load_personalized(console, args.current) if args.current else None
            policy, evaluation = training.train(log, current, random_state=args.seed)
            progress.update(task, advance=2, description="saving")
            save_model(
                policy,
                args.out,
                created_at=_now(),
                extra={
                    "n_decisions": len(log),
                    "actions": log.action_ids,
                    "fit_report": policy.fit_report_,
                    "evaluation": evaluation,
                },
            )
            progress.update(task, advance=1)
        version = ModelRegistry(args.registry).register(args.out) if args.registry else None
    except (LogFormatError, ModelStoreError, RegistryError, ValueError) as exc:
        return _fail(console, str(exc))
    report = policy.fit_report_
    table = Table(title=f"trained on {len(log)} decisions, {len(log.action_ids)} actions")
    table.add_column("")
    table.add_column("value")
    table.add_row("model", report["family"])
    table.add_row("personalised", "yes" if report["personalize"] else
                  "no: a fixed ranking is as good (safety fallback)")
    table.add_row("penalty C (cross-validated)", f"{report['C']:g}")
    candidate = (evaluation.get("candidate") or {}).get("DR")
    if candidate:
        table.add_row(
            "greedy value, cross-fitted DR",
            f"{_fmt(candidate['value'])} [{_fmt(candidate['ci_low'])}, "
            f"{_fmt(candidate['ci_high'])}]",
        )
    table.add_row("logging policy value", _fmt(evaluation["logging"]["on_policy"]["value"]))
    if "lift_over_fixed_ranking" in report:
        table.add_row(
            "lift over best fixed ranking",
            f"{report['lift_over_fixed_ranking']:+.4f} ± {report['lift_se']:.4f}",
        )
    console.print(table)
    console.print(f"model written to [bold]{args.out}[/]")
    if version:
        console.print(f"registered as [bold]{version}[/] (promote with `models promote`)")
    return 0


def _log_from_stream(args: argparse.Namespace, progress: Progress, task: Any) -> Any:
    """Decisions joined with their outcomes, read from Kafka (see `learning`)."""
    from services.recommender import learning
    from shared.actions import load_actions
    from shared.settings import load_settings

    settings = load_settings()
    args.registry = args.registry or str(settings.model_registry_dir)
    stream = learning.log_from_stream(
        settings, datetime.now(UTC),
        lambda topic, n: progress.update(task, description=f"reading {topic}: {n} records"),
    )
    if not stream.rows:
        raise LogFormatError(f"no decision with a closed attribution window yet "
                             f"({stream.report.decisions} decisions read)")
    return learning.bandit_log(stream.rows, load_actions(settings.action_catalog_file))


# -- decide ------------------------------------------------------------------------------


def _read_contexts(path: str, default_actions: list[str]) -> tuple[list, list, list, list]:
    ids, contexts, candidates, features = [], [], [], []
    for lineno, raw in read_jsonl(path):
        if not isinstance(raw, dict):
            raise LogFormatError(f"line {lineno}: expected a JSON object")
        if "id" not in raw:
            raise LogFormatError(f"line {lineno}: id: missing")
        ids.append(raw["id"])
        contexts.append(parse_context(raw.get("context", {}), lineno))
        if raw.get("actions") is None:
            candidates.append(tuple(default_actions))
            features.append({})
        else:
            row_ids, row_features = parse_candidates(raw["actions"], lineno)
            candidates.append(row_ids)
            features.append(row_features)
    return ids, contexts, candidates, features


def _decide(args: argparse.Namespace) -> int:
    console = Console()
    try:
        model = _load_personalized(console, args.model)
        if model is None:
            return 1
        ids, contexts, candidates, features = _read_contexts(args.contexts, model.action_ids)
        rng = np.random.default_rng(args.seed)
        with _progress(console) as progress:
            progress.add_task(f"deciding for {len(ids)} contexts", total=None)
            choices = training.decide_batch(
                model, contexts, candidates, features, args.greedy, rng,
                args.exploration, args.epsilon, args.temperature,
            )
        out = Path(args.out)
        with out.open("w", encoding="utf-8") as handle:
            for row_id, choice in zip(ids, choices, strict=True):
                line = {"id": row_id, "action": choice.action,
                        "propensity": choice.propensity, "score": choice.score}
                handle.write(json.dumps(line) + "\n")
    except (LogFormatError, ModelStoreError, ValueError) as exc:
        return _fail(console, str(exc))
    except OSError as exc:
        return _fail(console, f"cannot write {args.out}: {exc}")
    counts: dict[str, int] = {}
    for choice in choices:
        counts[choice.action] = counts.get(choice.action, 0) + 1
    mode = "greedy" if args.greedy else args.exploration
    table = Table(title=f"{len(choices)} decisions ({mode})")
    table.add_column("action")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for action, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(action, str(count), f"{count / len(choices):.1%}")
    console.print(table)
    console.print(f"written to [bold]{args.out}[/]")
    return 0


# -- evaluate ----------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
    console = Console()
    try:
        model = _load_personalized(console, args.model)
        if model is None:
            return 1
        log = read_log(args.log)
        with _progress(console) as progress:
            progress.add_task(f"evaluating on {len(log)} decisions", total=None)
            results = training.evaluate_model(model, log)
    except (LogFormatError, ModelStoreError) as exc:
        return _fail(console, str(exc))
    table = Table(title=f"off-policy estimates on {len(log)} logged decisions (95% CI)")
    table.add_column("policy", no_wrap=True)
    for method in ("IPS", "SNIPS", "DR"):
        table.add_column(method)
    for name, estimates in results.items():
        if name == "logging":
            continue
        table.add_row(name, *(_estimate_cell(estimates.get(m)) for m in ("IPS", "SNIPS", "DR")))
    logging = results["logging"]["on_policy"]
    table.add_row("logging (on-policy mean)", _estimate_cell(logging), "", "")
    console.print(table)
    if args.json:
        payload = {name: {m: e.as_dict() for m, e in est.items()} for name, est in results.items()}
        Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


# -- models ------------------------------------------------------------------------------


def _registry(args: argparse.Namespace) -> ModelRegistry:
    if args.registry is None:
        from shared.settings import load_settings

        args.registry = str(load_settings().model_registry_dir)
    return ModelRegistry(args.registry)


def _models_list(args: argparse.Namespace) -> int:
    console = Console()
    registry = _registry(args)
    try:
        infos = registry.list()
    except RegistryError as exc:
        return _fail(console, str(exc))
    table = Table(title=f"model versions in {args.registry}")
    for column in ("version", "promoted", "kind", "created", "decisions", "DR value",
                   "personalised"):
        table.add_column(column)
    for info in infos:
        dr = ((info.manifest.get("evaluation") or {}).get("candidate") or {}).get("DR") or {}
        report = info.manifest.get("fit_report") or {}
        table.add_row(
            info.version,
            "*" if info.promoted else "",
            info.kind,
            info.created_at,
            str(info.manifest.get("n_decisions", "-")),
            _fmt(dr.get("value", float("nan"))),
            {True: "yes", False: "no"}.get(report.get("personalize"), "-"),
        )
    console.print(table)
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    console = Console()
    gate = PromotionGate(
        estimator=args.estimator, use_lower_bound=args.lower_bound, min_lift=args.min_lift
    )
    try:
        version = _registry(args).promote(args.version, gate, force=args.force)
    except PromotionRefused as exc:
        return _fail(console, f"{exc} (use --force to override)")
    except (RegistryError, ModelStoreError) as exc:
        return _fail(console, str(exc))
    console.print(f"promoted [bold]{version}[/]")
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    console = Console()
    try:
        version = _registry(args).rollback()
    except (RegistryError, ModelStoreError) as exc:
        return _fail(console, str(exc))
    console.print(f"rolled back: [bold]{version}[/] is promoted again")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="fit a next-best-action model on a logged-decisions file (JSON lines)"
    )
    train.add_argument("--log", help="JSON lines: context, action, propensity, reward, "
                       "optional actions; default: join decisions.v1 with outcomes from Kafka "
                       "(and register in MODEL_REGISTRY_DIR)")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--current", help="model directory of the current model, to compare")
    train.add_argument("--registry", help="also register the model in this registry directory")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=_train)

    decide = subparsers.add_parser("decide", help="choose an action for each context")
    decide.add_argument("--model", required=True, help="model directory")
    decide.add_argument("--contexts", required=True, help="JSON lines: id, context, actions")
    decide.add_argument("--out", required=True, help="JSON lines: id, action, propensity, score")
    decide.add_argument("--greedy", action="store_true", help="no exploration (propensity 1)")
    decide.add_argument("--exploration", choices=("epsilon_greedy", "softmax"),
                        default="epsilon_greedy")
    decide.add_argument("--epsilon", type=float, default=0.1)
    decide.add_argument("--temperature", type=float, default=0.05,
                        help="softmax temperature, in reward units")
    decide.add_argument("--seed", type=int, default=0)
    decide.set_defaults(handler=_decide)

    evaluate = subparsers.add_parser(
        "evaluate", help="IPS / SNIPS / DR estimates of the model's greedy and constant policies"
    )
    evaluate.add_argument("--model", required=True, help="model directory")
    evaluate.add_argument("--log", required=True, help="logged decisions (JSON lines), "
                          "preferably not the ones the model was trained on")
    evaluate.add_argument("--json", help="also write the estimates to this JSON file")
    evaluate.set_defaults(handler=_evaluate)

    models = subparsers.add_parser("models", help="model versions: list, promote, rollback")
    models.add_argument("--registry", default=None,
                        help="registry directory (default: the MODEL_REGISTRY_DIR setting)")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="list versions").set_defaults(handler=_models_list)
    promote = actions.add_parser("promote", help="promote a version through the gate")
    promote.add_argument("version")
    promote.add_argument("--estimator", choices=("IPS", "SNIPS", "DR"), default="DR")
    promote.add_argument("--lower-bound", action="store_true",
                         help="compare the lower end of the 95%% interval, not the estimate")
    promote.add_argument("--min-lift", type=float, default=0.0,
                         help="required margin over the baselines, in reward units")
    promote.add_argument("--force", action="store_true", help="skip the gate")
    promote.set_defaults(handler=_models_promote)
    actions.add_parser("rollback", help="promote the previous version again").set_defaults(
        handler=_models_rollback
    )
