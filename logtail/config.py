"""Service configuration: one TOML file, `LOGTAIL_*` environment variables, `--set` flags, standard `OTEL_*`.

Layers, lowest precedence first: built-in defaults, the standard `OTEL_*` variables (events.md §6: honoured
under any logtail setting that names them), the TOML file, `LOGTAIL_<SECTION>_<KEY>` variables, `--set
section.key=value` flags. Every mistake is reported as one line that names the key and where its value came
from; `ConfigError` carries all of them at once so an operator fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import os
import tomllib
import types
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import typer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from logtail.pipeline.settings import PrivacySettings

DEFAULT_PATH: Final = Path("/etc/logtail/logtail.toml")
ENV_PREFIX: Final = "LOGTAIL_"
# Names the configuration file when --config is not given.
CONFIG_ENV: Final = "LOGTAIL_CONFIG"

Seconds = Annotated[StrictFloat, Field(gt=0)]
Count = Annotated[StrictInt, Field(ge=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Families(_Section):
    """Which LibreChat log families are followed and shipped."""

    error: StrictBool = True
    debug: StrictBool = True
    meili: StrictBool = True
    login: StrictBool = True

    def enabled(self) -> frozenset[str]:
        return frozenset(name for name, on in self.model_dump().items() if on)


class SourceConfig(_Section):
    logs_dir: Path
    login_log: Path | None = None
    state_dir: Path = Path("/var/lib/logtail")
    start_at: Literal["beginning", "end"] = "end"
    families: Families = Families()
    max_record_bytes: Annotated[StrictInt, Field(ge=1024)] = 1 << 20
    # `logs_dir` holds LibreChat's files, or container log files: Docker's (`/var/lib/docker/containers`) or the
    # kubelet's (`/var/log/pods`); `auto` tells them apart by what is there.
    kind: Literal["auto", "files", "docker", "cri"] = "auto"
    containers: StrictStr = "*librechat*"  # the kubelet's containers read: a glob over namespace, pod, container


class TlsConfig(_Section):
    insecure: StrictBool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def _http_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    return value.rstrip("/")


class OpenObserveConfig(_Section):
    """Settings of the `openobserve` profile (backends-otlp.md §1)."""

    org: StrictStr = "default"
    stream: StrictStr = "librechat"
    user: StrictStr | None = None
    password: StrictStr | None = None

    @model_validator(mode="after")
    def _pair(self) -> OpenObserveConfig:
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password go together; set both or neither")
        return self


class LokiConfig(_Section):
    """Settings of the `loki` profile (backends-otlp.md §2)."""

    tenant: StrictStr | None = None


class ExportConfig(_Section):
    profile: Literal["otlp", "openobserve", "loki"] = "otlp"
    endpoint: StrictStr = "http://localhost:4318"
    metrics_endpoint: StrictStr | None = None
    protocol: Literal["grpc", "http/protobuf", "http/json"] = "http/protobuf"
    headers: dict[str, StrictStr] = {}
    compression: Literal["gzip", "none"] = "gzip"
    timeout: Seconds = 10.0
    batch_max_records: Count = 512
    batch_max_bytes: Count = 4 << 20
    ship_twins: StrictBool = False
    dead_letter_max_bytes: Annotated[StrictInt, Field(ge=4096)] = 100 << 20
    tls: TlsConfig = TlsConfig()
    openobserve: OpenObserveConfig = OpenObserveConfig()
    loki: LokiConfig = LokiConfig()

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("metrics_endpoint")
    @classmethod
    def _metrics_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("protocol")
    @classmethod
    def _loki_http(cls, value: str, info: ValidationInfo) -> str:
        if value == "grpc" and info.data.get("profile") == "loki":
            raise ValueError("Loki accepts OTLP over HTTP only; use http/protobuf or http/json")
        return value


# Identifiers that never become metric attributes unless listed in metrics.allowed_attributes (events.md §4).
OPT_IN_METRIC_ATTRIBUTES: Final = ("user.id", "gen_ai.conversation.id", "librechat.request.id")


class MetricsConfig(_Section):
    max_series: Count = 2000
    max_models: Count = 100
    interval: Seconds = 10.0
    credits_per_usd: Annotated[StrictFloat, Field(gt=0)] = 1_000_000.0
    allowed_attributes: list[Literal["user.id", "gen_ai.conversation.id", "librechat.request.id"]] = []


class SelfConfig(_Section):
    health_address: StrictStr | None = None
    log_format: Literal["plain", "json"] = "plain"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("health_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)
        return value


def host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` with a literal IP, as the health endpoint binds it."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{address!r}: the host must be an IP address such as 127.0.0.1") from None
    return host, int(port)


def _default_resource() -> dict[str, Any]:
    return {"service.name": "librechat"}


class Config(_Section):
    source: SourceConfig
    export: ExportConfig = ExportConfig()
    resource: dict[str, StrictStr | StrictInt | StrictFloat | StrictBool] = Field(default_factory=_default_resource)
    privacy: PrivacySettings = PrivacySettings()
    metrics: MetricsConfig = MetricsConfig()
    self: SelfConfig = SelfConfig()

    @field_validator("resource")
    @classmethod
    def _service_name(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not str(value.get("service.name", "")).strip():
            raise ValueError("'service.name' must not be empty")
        return value


class ConfigError(Exception):
    """Every problem found, one line each, naming the key."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A settable key: its dotted path, the field's type and its `LOGTAIL_*` variable."""

    path: str
    annotation: Any
    required: bool

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.upper().replace(".", "_")


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[_Leaf]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        target = _unwrap(field.annotation)
        if isinstance(target, type) and issubclass(target, BaseModel):
            yield from _leaves(target, path + ".")
        else:
            yield _Leaf(path, field.annotation, field.is_required())


def _unwrap(annotation: Any) -> Any:
    """The type a value must have, without Optional and Annotated wrappers."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


LEAVES: Final = {leaf.path: leaf for leaf in _leaves(Config)}
SECTIONS: Final = tuple(Config.model_fields)


def safe_url(url: str) -> str:
    """`url` fit for logs and messages: credentials in its userinfo (`https://user:pass@host`) masked."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="[REDACTED]@" + parts.netloc.rpartition("@")[2]))


def _optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _pairs(text: str) -> dict[str, str]:
    """`k=v,k2=v2` with percent-encoding, the W3C baggage shape OTEL_* variables use."""
    result: dict[str, str] = {}
    items = text.split(",")
    for position, item in enumerate(items, 1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            # The item may be a credential (`Authorization: Bearer …`): say where it is, never what it is.
            raise ValueError(f"item {position} of {len(items)} is not key=value")
        result[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return result


def parse_text(text: str, annotation: Any) -> Any:
    """A value given as text (environment, --set) turned into what the TOML file would have held.

    Values that do not convert are passed through as text so validation reports them with the key.
    """
    target = _unwrap(annotation)
    origin = get_origin(target)
    if text == "" and _optional(annotation):
        return None
    if target is bool:
        return {
            "true": True,
            "1": True,
            "yes": True,
            "on": True,
            "false": False,
            "0": False,
            "no": False,
            "off": False,
        }.get(text.strip().lower(), text)
    if origin in (dict, list, tuple):
        if text.lstrip().startswith(("[", "{")):
            return tomllib.loads(f"v = {text}")["v"]
        if origin is dict:
            return _pairs(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    if target in (int, float):
        try:
            return target(text)
        except ValueError:
            return text
    return text


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for name in parents:
        tree = tree.setdefault(name, {})
    tree[last] = value


def _flatten_resource(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`service.name = "x"` in TOML is a nested table; resource attributes are dotted names."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten_resource(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class _Layers:
    """Builds the raw settings tree and remembers where every value came from."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.origins: dict[tuple[str, ...], str] = {}
        self.problems: list[str] = []

    def put(self, path: str, value: Any, origin: str) -> None:
        if isinstance(value, dict) and LEAVES.get(path) and get_origin(_unwrap(LEAVES[path].annotation)) is dict:
            # Maps (headers, resource) merge key by key across layers.
            for key, item in value.items():
                self._put_one(path, key, item, origin)
            return
        _set(self.tree, path, value)
        self.origins[tuple(path.split("."))] = origin

    def _put_one(self, path: str, key: str, value: Any, origin: str) -> None:
        node = self.tree
        for name in path.split("."):
            node = node.setdefault(name, {})
        if path == "resource" and not isinstance(value, str | int | float):  # bool is an int
            self.problems.append(f"resource.{key} ({origin}): must be a string, number or boolean, got {value!r}")
            return
        node[key] = value
        self.origins[(*path.split("."), key)] = origin

    def text(self, path: str, text: str, origin: str) -> None:
        leaf = LEAVES.get(path)
        if leaf is None:
            self.problems.append(f"{path} ({origin}): unknown key{_suggest(path)}")
            return
        try:
            self.put(path, parse_text(text, leaf.annotation), origin)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            self.problems.append(f"{path} ({origin}): {exc}")

    def file(self, data: Mapping[str, Any], origin: str) -> None:
        for section, body in data.items():
            if section == "resource" and isinstance(body, dict):
                self.put("resource", _flatten_resource(body), origin)
            elif section in SECTIONS and isinstance(body, dict):
                self._table(section, body, origin)
            else:
                _set(self.tree, section, body)
                self.origins[(section,)] = origin

    def _table(self, prefix: str, table: Mapping[str, Any], origin: str) -> None:
        for key, value in table.items():
            path = f"{prefix}.{key}"
            if isinstance(value, dict) and path not in LEAVES and any(p.startswith(path + ".") for p in LEAVES):
                self._table(path, value, origin)
            else:
                self.put(path, value, origin)

    def origin_of(self, loc: tuple[str, ...]) -> str:
        """` (where)` for a message about `loc`, empty when no single source set it."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.origins:
                return f" ({self.origins[loc[:end]]})"
        below = {origin for key, origin in self.origins.items() if key[: len(loc)] == loc}
        return f" ({below.pop()})" if len(below) == 1 else ""


def _suggest(path: str) -> str:
    prefix, _, name = path.rpartition(".")
    siblings = [p.rpartition(".")[2] for p in LEAVES if p.rpartition(".")[0] == prefix]
    if not prefix:
        siblings = list(SECTIONS)
    close = difflib.get_close_matches(name, siblings, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _otel(layers: _Layers, env: Mapping[str, str]) -> None:
    simple = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "export.endpoint",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "export.protocol",
        "OTEL_EXPORTER_OTLP_HEADERS": "export.headers",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "export.compression",
        "OTEL_EXPORTER_OTLP_INSECURE": "export.tls.insecure",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": "export.tls.ca_file",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "export.tls.cert_file",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY": "export.tls.key_file",
        "OTEL_RESOURCE_ATTRIBUTES": "resource",
    }
    for name, path in simple.items():
        if name in env:
            layers.text(path, env[name], name)
    if "OTEL_EXPORTER_OTLP_TIMEOUT" in env:  # milliseconds by the OTel spec
        text = env["OTEL_EXPORTER_OTLP_TIMEOUT"]
        try:
            layers.put("export.timeout", float(text) / 1000, "OTEL_EXPORTER_OTLP_TIMEOUT")
        except ValueError:
            layers.problems.append(f"export.timeout (OTEL_EXPORTER_OTLP_TIMEOUT): {text!r} is not milliseconds")
    if "OTEL_SERVICE_NAME" in env:  # wins over OTEL_RESOURCE_ATTRIBUTES, as the SDKs do
        layers.put("resource", {"service.name": env["OTEL_SERVICE_NAME"]}, "OTEL_SERVICE_NAME")


def _logtail_env(layers: _Layers, env: Mapping[str, str]) -> None:
    by_name = {leaf.env: leaf.path for leaf in LEAVES.values()}
    section_prefixes = tuple(f"{ENV_PREFIX}{section.upper()}" for section in SECTIONS)
    for name in sorted(env):
        if name in by_name:
            layers.text(by_name[name], env[name], name)
        elif name.startswith(section_prefixes):
            layers.problems.append(f"{name}: no such setting{_suggest_env(name, by_name)}")


def _suggest_env(name: str, known: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def config_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """--config, else $LOGTAIL_CONFIG, else /etc/logtail/logtail.toml when it exists."""
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load_config(
    path: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """The validated configuration, or ConfigError listing every problem (one line each, naming the key)."""
    env = os.environ if env is None else env
    layers = _Layers()
    # The built-in resource is the lowest layer, so adding attributes elsewhere keeps service.name.
    layers.put("resource", _default_resource(), "the default")
    _otel(layers, env)
    path = config_path(path, env)
    if path is not None:
        try:
            layers.file(tomllib.loads(path.read_text(encoding="utf-8")), str(path))
        except OSError as exc:
            layers.problems.append(f"{path}: cannot read the configuration file: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            layers.problems.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        except tomllib.TOMLDecodeError as exc:
            layers.problems.append(f"{path}: invalid TOML: {exc}")
        if layers.problems:  # without the file, what follows would only be noise
            raise ConfigError(layers.problems)
    _logtail_env(layers, env)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            layers.problems.append(f"--set {item}: expected section.key=value")
        else:
            layers.text(key.strip(), text, f"--set {key.strip()}")
    try:
        config = Config.model_validate(layers.tree)
    except ValidationError as exc:
        layers.problems += [line for error in exc.errors() for line in _describe(error, layers)]
    if layers.problems:
        raise ConfigError(layers.problems)
    return config


def _describe(error: Any, layers: _Layers) -> list[str]:
    loc = tuple(error["loc"])
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    where = layers.origin_of(tuple(str(part) for part in loc if not isinstance(part, int)))
    kind = error["type"]
    if kind == "extra_forbidden":
        what = "unknown section" if len(loc) == 1 else "unknown key"
        return [f"{key}{where}: {what}{_suggest(key)}"]
    if kind == "missing":
        # A missing section is reported as the required keys inside it.
        required = [leaf for path, leaf in LEAVES.items() if leaf.required and (path + ".").startswith(key + ".")]
        return [
            f"{leaf.path}: required; set it in the configuration file, as {leaf.env} or with --set {leaf.path}=..."
            for leaf in required
        ]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind != "value_error" and not isinstance(error.get("input"), dict | type(None)):
        message += f", got {error['input']!r}"
    return [f"{key}{where}: {message}"]


# The command-line shape of the layers above, shared by every command that reads the configuration.
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (default: $LOGTAIL_CONFIG, else /etc/logtail/logtail.toml)"),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="SECTION.KEY=VALUE", help="Override one key; repeatable. Beats LOGTAIL_* vars."),
]


class ProtocolChoice(enum.StrEnum):
    grpc = "grpc"
    http_protobuf = "http/protobuf"
    http_json = "http/json"


EndpointOption = Annotated[str | None, typer.Option(metavar="URL", help="OTLP endpoint; overrides the configuration")]
ProtocolOption = Annotated[ProtocolChoice | None, typer.Option(help="OTLP protocol; overrides the configuration")]
