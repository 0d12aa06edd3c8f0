"""The ``recsys-gql`` command line.

The data and training commands live in the ``training`` package, which depends on
``recsys_gql`` and never the other way round; they are imported only when such a command runs,
so the server never loads training code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from recsys_gql.errors import RecsysError
from recsys_gql.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from recsys_gql.db.migrate import MigrationResult

T = TypeVar("T")


def _cmd_data_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from training.fetch import fetch

    enrich = None
    api_key = os.environ.get("TMDB_API_KEY")
    if api_key:
        from training.tmdb_step import tmdb_enricher

        enrich = tmdb_enricher(api_key, settings.cache_dir)
    source = args.source or settings.data_source
    result = fetch(settings.data_dir / "raw", source, force=args.force, enrich=enrich)
    verb = "already present at" if result.skipped else "installed into"
    release = "the 2018-09-26 release" if result.official_release else "a MovieLens-shaped set"
    overviews = "with plot overviews" if result.has_overviews else "without plot overviews"
    print(f"ml-latest-small {verb} {result.destination} ({release}, {overviews})")
    if result.skipped:
        print("use --force to fetch it again")
    return 0


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.config import TrainConfig
    from training.pipeline import is_fresh, train

    config = TrainConfig.load(args.config)
    data_dir: Path = args.data_dir or settings.raw_data_dir
    out: Path = args.out or settings.artifacts_dir
    if args.if_stale:
        fresh, why = is_fresh(out, data_dir, config)
        if fresh:
            print(f"artifacts are up to date: {why}")
            return 0
        print(f"training: {why}")
    result = train(
        data_dir,
        out,
        config,
        cache_dir=None if args.no_cache else settings.cache_dir,
        show_progress=not args.quiet,
    )
    total = sum(stage.seconds for stage in result.stages)
    print(f"run {result.manifest.run_id} written to {result.run_dir} in {total:.1f}s")
    print(f"{out / 'current'} -> {result.run_dir.name}")
    return 0


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.config import EvalConfig, TrainConfig
    from training.experiment import record_in_manifest, run_evaluation
    from training.report import write_report

    artifacts: Path = args.artifacts or settings.artifacts_dir / "current"
    results = run_evaluation(
        args.data_dir or settings.raw_data_dir,
        artifacts,
        TrainConfig.load(args.config),
        EvalConfig.load(args.config),
        cache_dir=settings.cache_dir,
    )
    write_report(results, args.reports)
    if not args.no_record:
        record_in_manifest(artifacts, results)
    served = results["test"]["default"]
    ease = results["test"].get("ease_r")
    versus = f" (EASE^R {ease['ndcg_at_10']:.4f})" if ease else " (EASE^R skipped)"
    print(
        f"default NDCG@10 {served['ndcg_at_10']:.4f}{versus}; "
        f"report in {args.reports / 'evaluation.md'}"
    )
    return 0


def _cmd_db_init(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from recsys_gql.db.loader import init_database

    data_dir: Path = args.data_dir or settings.raw_data_dir
    result = asyncio.run(init_database(settings.database_url, data_dir, force=args.force))
    if result.migration is not None:
        print(_describe_migration(result.migration))
    print(
        f"database {result.status}: {result.movies:,} movies, {result.users:,} users, "
        f"{result.ratings:,} ratings ({result.seconds:.1f}s)"
    )
    return 0


def _describe_migration(result: MigrationResult) -> str:
    from recsys_gql.db.migrate import BASELINE

    if result.stamped:
        return (
            f"recognised the schema made before migrations and stamped it {BASELINE}; "
            f"schema now at revision {result.after}"
        )
    if not result.changed:
        return f"schema already at revision {result.after}"
    return f"schema {result.before or 'none'} -> {result.after or 'none'}"


def _on_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """``work(engine)`` on the configured database, the engine disposed of afterwards."""
    import asyncio

    from recsys_gql.db.session import create_db_engine

    async def run() -> T:
        engine = create_db_engine(settings.database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.db.migrate import upgrade

    print(_describe_migration(_on_database(settings, lambda e: upgrade(e, args.revision))))
    return 0


def _cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.db.migrate import downgrade

    print(_describe_migration(_on_database(settings, lambda e: downgrade(e, args.revision))))
    return 0


def _cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.db.migrate import schema_state
    from recsys_gql.readiness import schema_problem

    state = _on_database(settings, schema_state)
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"schema revision {state.revision or 'none'}; this version's newest is {state.head}")
    problem = schema_problem(state, url)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


def _cmd_users_token(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from recsys_gql.api.security import issue_token
    from recsys_gql.db import repository as repo
    from recsys_gql.db.session import Database

    async def issue() -> str | None:
        database = Database.open(settings.database_url)
        try:
            async with database.sessions() as session:
                if await repo.get_user(session, args.user_id) is None:
                    return None
            return await issue_token(database, args.user_id)
        finally:
            await database.dispose()

    token = asyncio.run(issue())
    if token is None:
        print(f"recsys-gql: error: user {args.user_id} does not exist", file=sys.stderr)
        return 2
    print(token)
    print(f"token for user {args.user_id}; it is shown only once", file=sys.stderr)
    return 0


def _cmd_users_revoke(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from recsys_gql.api.security import revoke
    from recsys_gql.db.session import Database

    async def run() -> bool:
        database = Database.open(settings.database_url)
        try:
            return await revoke(database, args.token)
        finally:
            await database.dispose()

    if not asyncio.run(run()):
        print("recsys-gql: error: no live token matches", file=sys.stderr)
        return 2
    print("token revoked")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from recsys_gql.db.session import Database
    from recsys_gql.readiness import StartupError, check_database, open_engine
    from recsys_gql.tracing import TracingError, tracing_enabled

    async def preflight() -> None:
        engine = open_engine(settings)
        database = Database.open(settings.database_url)
        try:
            await check_database(database, engine)
        finally:
            await database.dispose()

    try:
        tracing_enabled(settings)  # refuses an OTLP protocol this build cannot export
        asyncio.run(preflight())  # fail fast, with a clear message, before any worker starts
    except (StartupError, TracingError) as exc:
        print(f"recsys-gql: cannot serve: {exc}", file=sys.stderr)
        return 2
    from recsys_gql.metrics import multiprocess

    metrics_dir = multiprocess.prepare()  # before any metric exists; the workers inherit it
    try:
        return _serve(args, settings)
    finally:
        multiprocess.remove(metrics_dir)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run uvicorn (the checks have passed and the metrics directory is ready)."""
    from contextlib import suppress

    from recsys_gql.serving import serve, uvicorn_config

    host, port = args.host or settings.host, args.port or settings.port
    print(f"GraphQL on http://{host}:{port}/graphql")
    config = uvicorn_config(settings, host, port, args.workers or settings.workers)
    metrics_port = None
    if settings.metrics_port is not None:
        from recsys_gql.metrics.exposition import start_metrics_port

        try:
            metrics_port, _ = start_metrics_port(settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            print(f"recsys-gql: cannot serve metrics on port {settings.metrics_port}: {exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
        print(f"metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    try:
        with suppress(KeyboardInterrupt):
            serve(config)
    finally:
        if metrics_port is not None:
            metrics_port.shutdown()
    return 0


def _cmd_export_schema(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.api.schema import build_schema

    text = build_schema().as_str() + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run `recsys-gql export-schema`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _cmd_artifacts_verify(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.recsys.runs import verify_run

    path: Path = args.path or settings.artifacts_dir / "current"
    manifest = verify_run(path.resolve())
    print(f"{path}: run {manifest.run_id}, {len(manifest.files)} files verified")
    for name, record in manifest.arms.items():
        print(f"  arm {name}: {record.status}" + (f" ({record.reason})" if record.reason else ""))
    ranker = manifest.ranker
    print(f"  ranker: {ranker.status}" + (f" ({ranker.reason})" if ranker.reason else ""))
    return 0


def _cmd_encoder_export(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_gql.artifacts import read_manifest
    from recsys_gql.recsys.content import SentenceEncoder
    from recsys_gql.recsys.engine import query_encoder

    choice = args.backend or settings.search_encoder
    current = settings.artifacts_dir / "current"
    if current.is_dir():  # the model the served run embedded with (and its runtime, for `run`)
        encoder = query_encoder(read_manifest(current), backend=None if choice == "run" else choice)
    elif choice == "run":
        print(
            f"recsys-gql: error: RECSYS_GQL_SEARCH_ENCODER is 'run' and there is no run at "
            f"{current} to name the encoder: train first, or pass --backend",
            file=sys.stderr,
        )
        return 2
    else:
        encoder = SentenceEncoder(backend=choice)
    encoder.export_root = settings.cache_dir
    try:
        model_file = encoder.export()
    except RuntimeError as exc:  # no local model folder to export from
        print(f"recsys-gql: error: {exc}", file=sys.stderr)
        return 2
    if model_file is None:
        print("the query encoder runs on torch: nothing to export")
    else:
        print(f"{encoder.backend} query encoder: {model_file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="recsys-gql", description="Hybrid movie recommendations over GraphQL."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="raw data")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser(
        "fetch", help="put MovieLens ml-latest-small into <data-dir>/raw/ml-latest-small"
    )
    fetch.add_argument(
        "--source",
        help="local folder or zip to copy from (default: $RECSYS_GQL_DATA_SOURCE, else download)",
    )
    fetch.add_argument("--force", action="store_true", help="replace an existing copy")
    fetch.set_defaults(handler=_cmd_data_fetch)

    train = commands.add_parser("train", help="train and publish artifacts/current")
    train.add_argument("--data-dir", type=Path, help="MovieLens-shaped folder")
    train.add_argument("--out", type=Path, help="artifacts root (default: artifacts)")
    train.add_argument("--config", type=Path, help="TOML file overriding the defaults")
    train.add_argument(
        "--if-stale", action="store_true", help="do nothing when current is valid and up to date"
    )
    train.add_argument("--no-cache", action="store_true", help="ignore the embedding cache")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="offline evaluation and tuning report")
    evaluate.add_argument("--data-dir", type=Path, help="MovieLens-shaped folder")
    evaluate.add_argument("--artifacts", type=Path, help="run folder (default: current)")
    evaluate.add_argument("--config", type=Path, help="TOML file ([evaluation] table)")
    evaluate.add_argument("--reports", type=Path, default=Path("reports"), help="output folder")
    evaluate.add_argument(
        "--no-record", action="store_true", help="do not write the results into the manifest"
    )
    evaluate.set_defaults(handler=_cmd_evaluate)

    db = commands.add_parser("db", help="the catalog and ratings database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    init = db_commands.add_parser("init", help="migrate the schema and load the data folder")
    init.add_argument("--data-dir", type=Path, help="MovieLens-shaped folder")
    init.add_argument(
        "--force", action="store_true", help="replace a different dataset (drops API ratings)"
    )
    init.set_defaults(handler=_cmd_db_init)
    upgrade = db_commands.add_parser(
        "upgrade", help="migrate the schema to the newest revision (db init runs it too)"
    )
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=_cmd_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate the schema back")
    downgrade.add_argument("revision", help="target revision, e.g. 0001, or -1 for one step")
    downgrade.set_defaults(handler=_cmd_db_downgrade)
    current = db_commands.add_parser(
        "current", help="the schema revision, and whether this version can serve it"
    )
    current.set_defaults(handler=_cmd_db_current)

    users = commands.add_parser("users", help="API tokens of users")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    token = user_commands.add_parser("token", help="issue a write token for an existing user")
    token.add_argument("user_id", type=int)
    token.set_defaults(handler=_cmd_users_token)
    revoke = user_commands.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    revoke.set_defaults(handler=_cmd_users_revoke)

    serve = commands.add_parser("serve", help="serve the GraphQL API under uvicorn")
    serve.add_argument("--host", help="bind address (default $RECSYS_GQL_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default $RECSYS_GQL_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(handler=_cmd_serve)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--out", type=Path, default=Path("schema.graphql"))
    export.add_argument("--check", action="store_true", help="fail if the file is stale")
    export.set_defaults(handler=_cmd_export_schema)

    encoder = commands.add_parser("encoder", help="the sentence model searches are encoded with")
    encoder_commands = encoder.add_subparsers(dest="encoder_command", required=True)
    export_encoder = encoder_commands.add_parser(
        "export",
        help="build the ONNX query encoder into the cache folder now, not in the first server "
        "process that searches (once per machine or image)",
    )
    export_encoder.add_argument(
        "--backend",
        choices=("onnx", "onnx-int8"),
        help="default: $RECSYS_GQL_SEARCH_ENCODER (for `run`, the current run's)",
    )
    export_encoder.set_defaults(handler=_cmd_encoder_export)

    artifacts = commands.add_parser("artifacts", help="inspect artifacts")
    artifact_commands = artifacts.add_subparsers(dest="artifacts_command", required=True)
    check = artifact_commands.add_parser("verify", help="verify every file of a run")
    check.add_argument("path", nargs="?", type=Path, help="run folder (default: current)")
    check.set_defaults(handler=_cmd_artifacts_verify)
    return parser


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting, named by its environment variable."""
    prefix = Settings.model_config.get("env_prefix", "")
    problems = []
    for item in error.errors():
        name = f"{prefix}{item['loc'][0]}".upper() if item["loc"] else prefix.rstrip("_")
        problems.append(f"{name}: {item['msg']} (got {item['input']!r})")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recsys-gql`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for problem in settings_problems(exc):
            print(f"recsys-gql: error: {problem}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings))
    except RecsysError as exc:
        print(f"recsys-gql: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recsys-gql: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
