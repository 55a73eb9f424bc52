"""Configuration: the file, LOGTAIL_* variables, --set flags and OTEL_* variables, and how mistakes are reported."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from logtail.config import LEAVES, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "logtail.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "logtail.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None, env: dict[str, str] | None = None, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {}, overrides=overrides)
    return caught.value.problems


def test_missing_optional_sections_use_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[source]\nlogs_dir = "/srv/lc/logs"\n'), env={})
    assert config.source.logs_dir == Path("/srv/lc/logs")
    assert config.source.state_dir == Path("/var/lib/logtail")
    assert config.source.families.enabled() == {"error", "debug", "meili", "login"}
    assert config.export.endpoint == "http://localhost:4318"
    assert config.export.protocol == "http/protobuf"
    assert config.resource == {"service.name": "librechat"}
    assert config.privacy.email == "mask"
    assert config.self.health_address is None


def _uncommented_defaults() -> str:
    """The example with every `# key = default` line switched on."""
    return re.sub(r"(?m)^# ([\w.]+ = .+)$", r"\1", EXAMPLE.read_text(encoding="utf-8"))


def test_the_example_file_states_the_real_default_of_every_key(tmp_path: Path) -> None:
    text = _uncommented_defaults()
    assert text != EXAMPLE.read_text(encoding="utf-8")
    from_example = load_config(write(tmp_path, text), env={})
    defaults = load_config(None, env={}, overrides=[f"source.logs_dir={from_example.source.logs_dir}"])
    assert from_example == defaults


def _documented() -> set[str]:
    """`section.key` for every `[table]` and every (commented) `key = value` line under it in the example."""
    keys: set[str] = set()
    section = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if header := re.fullmatch(r"\[([\w.]+)\]", line):
            section = header[1]
            keys.add(section)
        elif key := re.match(r"#?\s*(\w+) = ", line):
            keys.add(f"{section}.{key[1]}")
    return keys


def test_the_example_file_documents_every_key() -> None:
    assert set(LEAVES) <= _documented()


def test_the_example_is_a_valid_configuration_once_its_logs_dir_exists(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={}, overrides=[f"source.logs_dir={tmp_path}"])
    assert config.source.logs_dir == tmp_path


def test_unknown_keys_and_sections_are_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nlogs_dri = "/x"\nlogs_dir = "/x"\n[exprot]\nendpoint = "http://a"\n')
    assert problems(path) == [
        f"source.logs_dri ({path}): unknown key; did you mean 'logs_dir'?",
        f"exprot ({path}): unknown section; did you mean 'export'?",
    ]


def test_wrong_types_name_the_key_the_source_and_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[source]\nlogs_dir = "/x"\nstart_at = "middle"\n[source.families]\ndebug = "no"\n'
        '[export]\ntimeout = "10"\n[export.headers]\nAuthorization = 5\n',
    )
    assert problems(path) == [
        f"source.start_at ({path}): Input should be 'beginning' or 'end', got 'middle'",
        f"source.families.debug ({path}): Input should be a valid boolean, got 'no'",
        f"export.headers.Authorization ({path}): Input should be a valid string, got 5",
        f"export.timeout ({path}): Input should be a valid number, got '10'",
    ]


def test_every_problem_is_reported_at_once_from_every_source(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nlogs_dir = "/x"\n[privacy]\nredact_patterns = ["ok", "(open"]\n')
    lines = problems(
        path,
        env={"LOGTAIL_EXPORT_TIMOUT": "3", "LOGTAIL_SELF_LOG_FORMAT": "xml", "LOGTAIL_COLLECTOR_OUT": "ignored"},
        overrides=("export.compression=zstd", "metrics.allowed_attributes=user.id,gen_ai.request.model"),
    )
    assert lines == [
        "LOGTAIL_EXPORT_TIMOUT: no such setting; did you mean LOGTAIL_EXPORT_TIMEOUT?",
        "export.compression (--set export.compression): Input should be 'gzip' or 'none', got 'zstd'",
        f"privacy.redact_patterns ({path}): redact pattern '(open': missing ), unterminated subpattern at position 0",
        "metrics.allowed_attributes[1] (--set metrics.allowed_attributes): Input should be 'user.id', "
        "'gen_ai.conversation.id' or 'librechat.request.id', got 'gen_ai.request.model'",
        "self.log_format (LOGTAIL_SELF_LOG_FORMAT): Input should be 'plain' or 'json', got 'xml'",
    ]


def test_no_configuration_at_all_names_the_one_required_key() -> None:
    assert problems(None) == [
        "source.logs_dir: required; set it in the configuration file, as LOGTAIL_SOURCE_LOGS_DIR "
        "or with --set source.logs_dir=..."
    ]


def test_broken_toml_is_one_line_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nlogs_dir = "/x\n')
    [line] = problems(path)
    assert line.startswith(f"{path}: invalid TOML: ") and "line 2" in line


def test_an_unreadable_configuration_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert problems(missing) == [f"{missing}: cannot read the configuration file: No such file or directory"]


def test_the_config_file_comes_from_logtail_config_when_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nlogs_dir = "/from/env/file"\n')
    assert load_config(None, env={"LOGTAIL_CONFIG": str(path)}).source.logs_dir == Path("/from/env/file")


def test_layers_override_in_documented_order(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nlogs_dir = "/x"\n[export]\nendpoint = "http://file:4318"\ntimeout = 5.0\n')
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "LOGTAIL_EXPORT_TIMEOUT": "7.5",
    }
    config = load_config(path, env=env, overrides=["export.timeout=9"])
    assert config.export.protocol == "grpc"  # only OTEL_* names it
    assert config.export.endpoint == "http://file:4318"  # the file beats OTEL_*
    assert config.export.timeout == 9.0  # --set beats LOGTAIL_* beats the file
    assert load_config(path, env=env).export.timeout == 7.5
    otel_only = {k: v for k, v in env.items() if k.startswith("OTEL_")}
    assert load_config(None, env=otel_only, overrides=["source.logs_dir=/x"]).export.timeout == 2.0  # OTEL ms


def test_standard_otel_variables_fill_headers_and_resource() -> None:
    env = {
        "LOGTAIL_SOURCE_LOGS_DIR": "/x",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20YWJj,stream-name=librechat",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment.name=prod",
        "OTEL_SERVICE_NAME": "chat",
        "LOGTAIL_EXPORT_HEADERS": "stream-name=lc2",
    }
    config = load_config(None, env=env)
    assert config.export.headers == {"Authorization": "Basic YWJj", "stream-name": "lc2"}
    assert config.resource == {"service.name": "chat", "deployment.environment.name": "prod"}


def test_resource_attributes_are_written_as_dotted_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[source]\nlogs_dir = "/x"\n[resource]\nservice.name = "lc"\n'
        'deployment.environment.name = "staging"\nservice.instance.id = "a1"\nreplicas = 2\n',
    )
    assert load_config(path, env={}).resource == {
        "service.name": "lc",
        "deployment.environment.name": "staging",
        "service.instance.id": "a1",
        "replicas": 2,
    }
    bad = write(tmp_path, '[source]\nlogs_dir = "/x"\n[resource]\ntags = ["a"]\n')
    assert problems(bad) == [f"resource.tags ({bad}): must be a string, number or boolean, got ['a']"]


# One valid value per key, as text (environment and --set) and as the TOML value it means.
SAMPLES: dict[str, tuple[str, Any]] = {
    "source.logs_dir": ("/srv/logs", Path("/srv/logs")),
    "source.login_log": ("/srv/login-logs.log", Path("/srv/login-logs.log")),
    "source.state_dir": ("/srv/state", Path("/srv/state")),
    "source.start_at": ("beginning", "beginning"),
    "source.families.error": ("false", False),
    "source.families.debug": ("0", False),
    "source.families.meili": ("no", False),
    "source.families.login": ("off", False),
    "source.max_record_bytes": ("4096", 4096),
    "source.kind": ("cri", "cri"),
    "source.containers": ("librechat-*", "librechat-*"),
    "export.profile": ("openobserve", "openobserve"),
    "export.endpoint": ("https://o2.example.com/api/default", "https://o2.example.com/api/default"),
    "export.metrics_endpoint": ("https://mimir.example.com/otlp", "https://mimir.example.com/otlp"),
    "export.protocol": ("grpc", "grpc"),
    "export.headers": ("a=1,b=2", {"a": "1", "b": "2"}),
    "export.compression": ("none", "none"),
    "export.timeout": ("2.5", 2.5),
    "export.batch_max_records": ("100", 100),
    "export.batch_max_bytes": ("65536", 65536),
    "export.ship_twins": ("true", True),
    "export.dead_letter_max_bytes": ("65536", 65536),
    "export.openobserve.org": ("prod", "prod"),
    "export.openobserve.stream": ("lc", "lc"),
    "export.openobserve.user": ("root@example.com", "root@example.com"),
    "export.openobserve.password": ("s3cret", "s3cret"),
    "export.loki.tenant": ("team-a", "team-a"),
    "export.tls.insecure": ("true", True),
    "export.tls.ca_file": ("/etc/ca.pem", Path("/etc/ca.pem")),
    "export.tls.cert_file": ("/etc/c.pem", Path("/etc/c.pem")),
    "export.tls.key_file": ("/etc/c.key", Path("/etc/c.key")),
    "resource": ('{"service.name" = "lc", k = 1}', {"service.name": "lc", "k": 1}),
    "privacy.email": ("hash", "hash"),
    "privacy.redact_patterns": (r'["a{1,2}", "b"]', ("a{1,2}", "b")),
    "metrics.max_series": ("10", 10),
    "metrics.max_models": ("5", 5),
    "metrics.interval": ("30", 30.0),
    "metrics.credits_per_usd": ("1000", 1000.0),
    "metrics.allowed_attributes": ("user.id,librechat.request.id", ["user.id", "librechat.request.id"]),
    "self.health_address": ("[::1]:9464", "[::1]:9464"),
    "self.log_format": ("json", "json"),
    "self.log_level": ("debug", "debug"),
}


# Keys that are only valid together with another one.
PARTNERS: dict[str, list[str]] = {
    "export.openobserve.user": ["export.openobserve.password=p"],
    "export.openobserve.password": ["export.openobserve.user=u"],
}


def test_samples_cover_every_key() -> None:
    assert set(SAMPLES) == set(LEAVES)


def _get(config: Config, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_every_key_can_be_set_by_environment_and_by_flag(key: str) -> None:
    text, expected = SAMPLES[key]
    base = ([] if key == "source.logs_dir" else ["source.logs_dir=/x"]) + PARTNERS.get(key, [])
    by_env = load_config(None, env={LEAVES[key].env: text}, overrides=base)
    by_flag = load_config(None, env={}, overrides=[*base, f"{key}={text}"])
    assert _get(by_env, key) == _get(by_flag, key) == expected


def test_an_empty_value_unsets_an_optional_key() -> None:
    config = load_config(None, env={"LOGTAIL_SELF_HEALTH_ADDRESS": ""}, overrides=["source.logs_dir=/x"])
    assert config.self.health_address is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("self.health_address=localhost:9464", "self.health_address (--set self.health_address): "),
        ("self.health_address=127.0.0.1", "self.health_address (--set self.health_address): "),
        ("export.endpoint=localhost:4318", "export.endpoint (--set export.endpoint): must be an http"),
        ("export.timeout=0", "export.timeout (--set export.timeout): Input should be greater than 0"),
        ("source.max_record_bytes=10", "source.max_record_bytes (--set source.max_record_bytes): "),
        ("resource=service.name=", "resource (--set resource): 'service.name' must not be empty"),
        ("nonsense", "--set nonsense: expected section.key=value"),
        ("source.familes.debug=true", "source.familes.debug (--set source.familes.debug): unknown key"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(override: str, expected: str) -> None:
    [line] = problems(None, overrides=("source.logs_dir=/x", override))
    assert line.startswith(expected)


def test_added_resource_attributes_keep_the_default_service_name(tmp_path: Path) -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod"}
    config = load_config(None, env=env, overrides=[f"source.logs_dir={tmp_path}"])
    assert config.resource == {"service.name": "librechat", "deployment.environment.name": "prod"}
