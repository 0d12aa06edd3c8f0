"""docker/compose.yaml and docker/.env.example, checked without a Docker engine.

The Compose Specification schema comes from the PyPI package check-jsonschema (pinned in the
dev extras), which vendors ``schema/compose-spec.json`` of the compose-spec/compose-spec
repository and records its sha256 beside it; the test checks that record, so the schema used
is that upstream file unmodified. Validation is done with ``jsonschema`` on the file as written
and again after ``${...}`` interpolation with the values of .env.example, as Compose does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from recsys_gql.settings import Settings
from tests.conftest import REPO
from tests.docker.conftest import COMPOSE_FILE, ENV_EXAMPLE

SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
RECSYS_SERVICES = ("train", "api")
SETTINGS_FIELDS = {f"RECSYS_GQL_{name.upper()}" for name in Settings.model_fields}
COMPOSE_TEXT = COMPOSE_FILE.read_text(encoding="utf-8")
COMPOSE_VARIABLES = {m["name"] for m in INTERPOLATION.finditer(COMPOSE_TEXT)}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The Compose Specification JSON schema, checked against the sha256 its package records."""
    vendor = files(SCHEMA_PACKAGE)
    raw = (vendor / "compose-spec.json").read_bytes()
    recorded = (vendor / "sha256" / "compose-spec.sha256").read_text().split()[0]
    assert hashlib.sha256(raw).hexdigest() == recorded
    loaded: dict[str, Any] = json.loads(raw)
    assert loaded["title"] == "Compose Specification"
    return loaded


def env_example() -> dict[str, str]:
    """The ``NAME=value`` lines of .env.example (commented-out examples excluded)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` over a loaded file."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def one(match: re.Match[str]) -> str:
        value = env.get(match["name"])
        if match["op"] in (":-", "-") and not value:
            return str(match["arg"])
        if match["op"] in (":?", "?") and not value:
            raise AssertionError(f"{match['name']} is required: {match['arg']}")
        return value or ""

    return INTERPOLATION.sub(one, node)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as written (YAML anchors and merge keys resolved by PyYAML)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
    return loaded


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml after interpolation with .env.example."""
    resolved: dict[str, Any] = interpolate(compose, env_example())
    return resolved


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """Every violation, each as ``path: message`` of its most specific cause."""
    validator = jsonschema.Draft202012Validator(schema)
    causes = (jsonschema.exceptions.best_match([e]) for e in validator.iter_errors(document))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in causes if e]


def test_compose_file_is_valid_against_the_compose_spec(
    schema: dict[str, Any], compose: dict[str, Any], resolved: dict[str, Any]
) -> None:
    assert schema_errors(schema, compose) == []
    assert schema_errors(schema, resolved) == []


def test_the_schema_does_reject_a_wrong_compose_file(
    schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"]["train"]["condition"] = "service_finished"
    broken["services"]["api"]["deploy"]["replicas"] = [2]
    broken["services"]["redis"]["restart_policy"] = "always"
    errors = schema_errors(schema, broken)
    assert any(e.startswith("services/api/depends_on/train/condition") for e in errors), errors
    assert any(e.startswith("services/api/deploy/replicas") for e in errors), errors
    assert any("restart_policy" in e for e in errors), errors


def test_api_runs_two_replicas_after_train_succeeds(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["depends_on"]["train"] == {"condition": "service_completed_successfully"}
    for backing in ("postgres", "redis"):
        assert api["depends_on"][backing] == {"condition": "service_healthy"}
        assert services[backing]["healthcheck"]["test"][0] == "CMD"
    assert services["train"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "container_name" not in api  # a fixed name would stop a second replica
    # each replica needs a host port of its own: a range at least as long as the replicas
    (published,) = api["ports"]
    match = re.fullmatch(r"(?:[\d.]+:)?(\d+)-(\d+):8000", published)
    assert match, published
    assert int(match[2]) - int(match[1]) + 1 >= api["deploy"]["replicas"]


def test_train_is_one_shot_fetch_train_init(resolved: dict[str, Any]) -> None:
    train = resolved["services"]["train"]
    assert train["command"][:2] == ["sh", "-c"]
    assert train["command"][2] == (
        "recsys-gql data fetch && recsys-gql train --if-stale --quiet && recsys-gql db init"
    )
    assert train["restart"] == "no"
    assert train["healthcheck"] == {"disable": True}  # the image's /readyz probe is for api
    assert resolved["services"]["api"]["command"] == ["serve"]


def test_volumes_are_named_and_shared_as_intended(resolved: dict[str, Any]) -> None:
    services, named = resolved["services"], set(resolved["volumes"])
    assert {"data", "artifacts", "cache", "postgres"} <= named
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "artifacts:/var/lib/recsys-gql/artifacts" in services["train"]["volumes"]
    assert "artifacts:/var/lib/recsys-gql/artifacts:ro" in services["api"]["volumes"]
    assert "data:/var/lib/recsys-gql/data" in services["train"]["volumes"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in named, f"{volume}: a named volume, not a host path"


def test_services_build_this_repository(compose: dict[str, Any]) -> None:
    for name in RECSYS_SERVICES:
        build = compose["services"][name]["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).resolve() == REPO / "docker" / "Dockerfile"


def test_configuration_goes_through_recsys_gql_variables(resolved: dict[str, Any]) -> None:
    assert all(name.startswith("RECSYS_GQL_") for name in COMPOSE_VARIABLES), COMPOSE_VARIABLES
    for name in RECSYS_SERVICES:
        environment = resolved["services"][name]["environment"]
        for key in environment:
            if key in ("OMP_NUM_THREADS",):  # set from RECSYS_GQL_TRAIN_THREADS
                continue
            assert key in SETTINGS_FIELDS, f"{name}: {key} is not a setting of the service"
        assert resolved["services"][name]["env_file"] == [{"path": ".env", "required": False}]
    api = resolved["services"]["api"]["environment"]
    assert api["RECSYS_GQL_RATE_LIMIT_STORAGE"].startswith("redis://redis:6379")
    assert api["RECSYS_GQL_DATABASE_URL"] == (
        "postgresql+asyncpg://recsys:change-me-to-a-long-random-string@postgres:5432/recsys"
    )
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == "change-me-to-a-long-random-string"


def test_the_postgres_password_has_no_default(compose: dict[str, Any]) -> None:
    without = {k: v for k, v in env_example().items() if k != "RECSYS_GQL_POSTGRES_PASSWORD"}
    with pytest.raises(AssertionError, match="RECSYS_GQL_POSTGRES_PASSWORD is required"):
        interpolate(compose, without)


def test_env_example_documents_every_variable() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    mentioned = set(re.findall(r"^#? ?(RECSYS_GQL_[A-Z_]+)=", text, flags=re.MULTILINE))
    assert mentioned >= COMPOSE_VARIABLES, COMPOSE_VARIABLES - mentioned
    unknown = mentioned - SETTINGS_FIELDS - COMPOSE_VARIABLES
    assert not unknown, f"neither a setting nor used by compose.yaml: {unknown}"


def test_env_example_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_FIELDS:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    assert settings.workers == 2
    assert settings.is_production
    assert settings.rate_limit_reads == "30/minute"
    assert settings.rate_limit_fail_open is True


CHECK_OVERRIDE = REPO / "docker" / "check" / "compose.check.yaml"
CHECK_VARIABLES = {
    "RECSYS_GQL_CHECK_DATA_SOURCE": "/work/shared/data",
    "RECSYS_GQL_CHECK_POSTGRES_IMAGE": "recsys-gql-check/postgres:15-bookworm",
    "RECSYS_GQL_CHECK_REDIS_IMAGE": "recsys-gql-check/redis:7.0-bookworm",
}


def test_the_checks_override_changes_only_what_the_workplace_forces(
    schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    """make docker-check layers docker/check/compose.check.yaml over compose.yaml: stand-in
    images for PostgreSQL and Redis, a read-only local MovieLens copy for train, nothing else
    (the api replicas run exactly as the shipped file says)."""
    override: dict[str, Any] = yaml.safe_load(CHECK_OVERRIDE.read_text(encoding="utf-8"))
    assert set(override) == {"services"}
    services = override["services"]
    assert set(services) == {"train", "postgres", "redis"}
    assert set(services["postgres"]) == set(services["redis"]) == {"image"}
    (mount,) = services["train"]["volumes"]
    assert set(services["train"]) == {"volumes"}
    assert (mount["type"], mount["target"], mount["read_only"]) == ("bind", "/srv/movielens", True)
    # Compose's merge: mappings merged, volume lists extended; then interpolated and validated.
    merged = copy.deepcopy(compose)
    for name, changes in services.items():
        for key, value in changes.items():
            if key == "volumes":
                merged["services"][name][key] = [*merged["services"][name][key], *value]
            else:
                merged["services"][name][key] = value
    resolved = interpolate(merged, {**env_example(), **CHECK_VARIABLES})
    assert schema_errors(schema, resolved) == []
    assert resolved["services"]["postgres"]["image"].startswith("recsys-gql-check/")
    with pytest.raises(AssertionError, match="RECSYS_GQL_CHECK_DATA_SOURCE is required"):
        interpolate(merged, env_example())
