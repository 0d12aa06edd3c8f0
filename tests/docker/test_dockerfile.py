"""docker/Dockerfile and .dockerignore, checked without a Docker engine: hadolint and
shellcheck (from PyPI) report nothing, the runtime stage has the properties issue 8 asks for,
and the build context (computed with the Docker SDK's .dockerignore rules) carries what the
Dockerfile copies and nothing generated."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from recsys_gql.db.migrate import head_revision
from tests.conftest import REPO
from tests.docker.conftest import DOCKERFILE, DOCKERIGNORE, Image, dev_tool


def run_tool(*command: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a linter; its findings are on stdout."""
    return subprocess.run(
        [str(word) for word in command], capture_output=True, text=True, timeout=120, check=False
    )


STANDINS = REPO / "docker" / "check" / "standins"


@pytest.mark.parametrize(
    "dockerfile",
    [DOCKERFILE, *sorted(STANDINS.glob("*.Dockerfile"))],
    ids=lambda path: path.relative_to(REPO).as_posix(),
)
def test_hadolint_reports_nothing(dockerfile: Path) -> None:
    result = run_tool(dev_tool("hadolint"), "--no-color", dockerfile)
    # hadolint's default failure threshold is "info": even a style note fails this test.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install flask\nCMD python app.py\n")
    result = run_tool(dev_tool("hadolint"), "--no-color", careless)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3042", "DL3025"):  # untagged, unpinned, cache, CMD form
        assert rule in result.stdout


@pytest.mark.parametrize(
    "script",
    [
        "entrypoint.sh",
        "install-assets.sh",
        "check/standins/postgres-entrypoint.sh",
        "check/standins/redis-entrypoint.sh",
    ],
)
def test_shellcheck_reports_nothing_on_the_scripts(script: str) -> None:
    result = run_tool(dev_tool("shellcheck"), "--shell=sh", REPO / "docker" / script)
    assert (result.returncode, result.stdout) == (0, "")


def test_runtime_runs_as_a_numeric_non_root_user(image: Image) -> None:
    user, _, group = image.user.partition(":")
    assert user.isdigit(), image.user
    assert group.isdigit(), image.user
    assert int(user) != 0
    assert int(group) != 0


def test_runtime_sets_its_threads_and_stays_offline(image: Image) -> None:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        assert image.env.get(name) == "1", name
    assert image.env.get("HF_HUB_OFFLINE") == "1"
    assert image.env.get("ORT_DISABLE_TELEMETRY") == "1"
    assert image.env.get("RECSYS_GQL_HOST") == "0.0.0.0"
    assert image.env.get("RECSYS_GQL_WORKERS", "").isdigit()


def test_artifacts_and_data_are_volumes_never_copied(image: Image) -> None:
    for name in ("RECSYS_GQL_ARTIFACTS_DIR", "RECSYS_GQL_DATA_DIR"):
        assert image.env[name] in image.volumes, name
    sqlite_path = image.env["RECSYS_GQL_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    assert Path(sqlite_path).parent.as_posix() == image.env["RECSYS_GQL_DATA_DIR"]
    for copy in image.copies:
        for source in copy.sources:
            top = Path(source).parts[0]
            assert top not in {"data", "artifacts", "reports", "bench", "tests"}, copy


def test_entrypoint_healthcheck_and_command(image: Image) -> None:
    assert image.command_line == ["docker-entrypoint", "serve"]
    assert image.installed_from("/usr/local/bin/docker-entrypoint") == (
        REPO / "docker" / "entrypoint.sh"
    )
    assert re.fullmatch(r'--\S+ (--\S+ )*\s*CMD \["docker-healthcheck"\]', image.healthcheck)
    probe = image.installed_from("/usr/local/bin/docker-healthcheck")
    assert '/readyz"' in probe.read_text(encoding="utf-8")
    for script in (REPO / "docker" / "entrypoint.sh", probe):
        assert script.stat().st_mode & 0o111, f"{script} must be executable (git keeps the bit)"


def test_builder_takes_the_cpu_torch_the_project_pins() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (pin,) = [d for d in dependencies["project"]["dependencies"] if d.startswith("torch")]
    # The CPU index by default; a build may name a mirror of it (make docker-check does).
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu\n" in text
    assert re.search(
        rf'pip install [^\n]*--index-url "\$\{{TORCH_INDEX_URL\}}" {re.escape(pin)}\b', text
    ), f"the builder must install {pin} from the CPU index"
    assert "npm ci --prefix recsys_gql/web && npm run build --prefix recsys_gql/web" in text
    assert "npm ci --prefix recsys_gql/graphiql" in text


def context_of(root: Path) -> set[str]:
    """The paths `docker build` would send from ``root``, by the repository's .dockerignore."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return set(exclude_paths(str(root), patterns, dockerfile="docker/Dockerfile"))


def test_dockerignore_leaves_out_data_artifacts_and_everything_generated(tmp_path: Path) -> None:
    kept = {
        "pyproject.toml",
        "README.md",
        "schema.graphql",
        "recsys_gql/app.py",
        "recsys_gql/graphiql/package-lock.json",
        "recsys_gql/graphiql/.npmrc",
        "recsys_gql/web/package.json",
        "recsys_gql/web/src/main.tsx",
        "training/pipeline.py",
        "docker/entrypoint.sh",
        "docker/install-assets.sh",
        "docker/healthcheck.py",
    }
    dropped = {
        "data/raw/ml-latest-small/ratings.csv",
        "data/recsys.db",
        "artifacts/20261126T150000Z/item_factors.npy",
        ".venv/bin/python",
        "recsys_gql/graphiql/node_modules/react/index.js",
        "recsys_gql/web/node_modules/vite/index.js",
        "recsys_gql/web/dist/index.html",
        "recsys_gql/web/src/gql/graphql.ts",
        "recsys_gql/__pycache__/app.cpython-311.pyc",
        "training/__pycache__/fit.cpython-311.pyc",
        ".mypy_cache/3.11/cache.db",
        ".ruff_cache/content",
        ".pytest_cache/v/cache",
        "recsys_gql.egg-info/PKG-INFO",
        "reports/screenshots/desktop.png",
        "reports/evaluation.md",
        "docker/.env",
        "tests/conftest.py",
        "bench/results/serve.json",
        ".git/HEAD",
    }
    for name in kept | dropped:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "artifacts" / "current").symlink_to("20261126T150000Z")
    files = {p for p in context_of(tmp_path) if (tmp_path / p).is_file()}
    # Docker always sends the Dockerfile and .dockerignore (absent from this tree).
    assert files == kept


def test_the_real_context_holds_what_the_dockerfile_copies(image: Image) -> None:
    context = context_of(REPO)
    generated = {".venv", "node_modules", "__pycache__", ".mypy_cache", "dist", ".git", "data"}
    leaked = sorted(p for p in context if generated & set(Path(p).parts))
    leaked += sorted(p for p in context if p.startswith(("artifacts", "reports")))
    assert not leaked, leaked
    absent_page = not (REPO / "recsys_gql" / "web").exists()
    for copy in image.copies:
        if copy.from_stage is not None:
            continue
        for source in (s.rstrip("/") for s in copy.sources):
            if absent_page and source.startswith("recsys_gql/web"):
                continue
            assert source in context, f"COPY {source}: not in the build context"
            if (REPO / source).is_dir():
                assert any(p.startswith(f"{source}/") for p in context), source
    if absent_page:
        pytest.skip("the rest holds; recsys_gql/web (issue 7's page) is not in this checkout")


def test_the_installed_package_finds_its_run_time_files(tmp_path: Path) -> None:
    """The builder stage, emulated: the build context's files, `pip install --no-deps .` (not
    editable: the image has no source tree), then `install-assets`, as in the Dockerfile."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    # the assets are copied in the same step as the install (one layer of /opt/venv)
    assert "RUN pip install --no-cache-dir --no-deps . && install-assets /src\n" in text
    tree, site = tmp_path / "src", tmp_path / "site-packages"
    for name in context_of(REPO):
        if (REPO / name).is_file() and name.split("/")[0] in {
            "pyproject.toml",
            "README.md",
            "recsys_gql",
            "training",
        }:
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    # What the web stage hands over: GraphiQL's node_modules and the built page. Before the
    # page (issue 7) is in the checkout, a stand-in index.html takes the place of its build.
    shutil.copytree(
        REPO / "recsys_gql/graphiql/node_modules", tree / "recsys_gql/graphiql/node_modules"
    )
    page = REPO / "recsys_gql" / "web"
    if page.exists():
        assert (page / "dist" / "index.html").is_file(), "run `make web` first"
        shutil.copytree(page / "dist", tree / "recsys_gql/web/dist")
    else:
        (tree / "recsys_gql/web/dist").mkdir(parents=True)
        (tree / "recsys_gql/web/dist/index.html").write_text("<!doctype html>")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir"]
    subprocess.run([*pip, "--target", str(site), str(tree)], check=True, timeout=300)
    missing = run_tool(REPO / "docker" / "install-assets.sh", tmp_path / "nowhere", site)
    assert missing.returncode == 1
    assert "recsys_gql/graphiql/package.json is missing" in missing.stderr
    copied = run_tool(REPO / "docker" / "install-assets.sh", tree, site)
    assert copied.returncode == 0, copied.stderr
    check = """
import sys
from pathlib import Path
import recsys_gql
from recsys_gql.graphiql import render
site = Path(sys.argv[1])
assert Path(recsys_gql.__file__).is_relative_to(site), recsys_gql.__file__
rendered = render()
assert rendered.ok, rendered.problems
# the schema migrations ship with the package: revisions, env.py and the revision template
from recsys_gql.db.migrate import MIGRATIONS, head_revision
assert MIGRATIONS.is_relative_to(site) and (MIGRATIONS / "script.py.mako").is_file(), MIGRATIONS
assert head_revision() == sys.argv[3], head_revision()
if sys.argv[2] == "page":
    from recsys_gql.web import DIST
    assert DIST.is_relative_to(site) and (DIST / "index.html").is_file(), DIST
"""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            check,
            str(site),
            "page" if page.exists() else "-",
            head_revision(),
        ],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
