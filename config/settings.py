"""Settings: one frozen object built once at start from defaults, a file and the environment.

Order of precedence: ``config/default.toml`` < the file given with ``--config`` < environment
variables ``GATEWAY_<SECTION>_<KEY>``. This is the only module that reads ``os.environ``.
A bad or missing value raises :class:`config.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = PACKAGE_DIR / "default.toml"
SESSION_KINDS = ("visit", "call", "conference", "mediation", "training", "field")
ENV_PREFIX = "GATEWAY_"


@dataclasses.dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN or TURN server as handed to peers."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service. Tests build it directly with :func:`build_settings`."""

    host: str
    port: int
    tls_cert: Path | None
    tls_key: Path | None
    behind_https_proxy: bool
    log_level: str
    log_format: str
    hub_id: str
    data_dir: Path
    database_url: str
    redis_url: str | None
    redis_prefix: str
    secret_key: str
    #: keyring sealing identity numbers (records/keyring.py); filled by :func:`with_data_key`
    data_key: str
    login_max_failures: int
    login_max_failures_per_address: int
    login_lockout_s: float
    session_ttl_h: float
    invite_default_ttl_h: float
    max_message_bytes: int
    max_messages_per_s: float
    heartbeat_timeout_s: float
    resume_window_s: float
    outbound_queue: int
    in_process_worker: bool
    codec: str
    ice_servers: tuple[IceServer, ...]
    turn_secret: str
    turn_urls: tuple[str, ...]
    turn_ttl_s: int
    ice_loopback_only: bool
    #: a room's worker this busy (% of its core) takes no more of the room's participants
    spread_cpu_pct: float
    recordings_dir: Path
    recording_automatic: frozenset[str]
    segment_minutes: float
    retention_days: Mapping[str, int]
    holidays_dir: Path

    @property
    def tls(self) -> bool:
        """Whether the app itself serves HTTPS."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def secure_cookies(self) -> bool:
        """Mark cookies Secure when the browser reaches us over HTTPS."""
        return self.tls or self.behind_https_proxy


def _merge(base: dict[str, Any], extra: Mapping[str, Any], source: str) -> None:
    for section, values in extra.items():
        if section not in base:
            raise ConfigError(f"{source}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in values.items():
            if key not in base[section]:
                raise ConfigError(f"{source}: unknown key {section}.{key}")
            base[section][key] = value


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(path)!r} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc


#: ``GATEWAY_`` variables that are no setting: input of one command, read where it runs
COMMAND_INPUTS = frozenset({f"{ENV_PREFIX}NEW_PASSWORD"})


def new_account_password(environ: Mapping[str, str] | None = None) -> str | None:
    """The password ``accounts create`` gives the new account (``GATEWAY_NEW_PASSWORD``).

    None when unset or empty: the command generates one and prints it. An environment
    variable keeps the password out of the shell history and the process list.
    """
    value = (os.environ if environ is None else environ).get(f"{ENV_PREFIX}NEW_PASSWORD")
    return value or None


def _from_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    known = {f"{ENV_PREFIX}{s}_{k}".upper(): (s, k) for s in raw for k in raw[s]}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_PREFIX + "TEST_"):
            continue
        if name in COMMAND_INPUTS:
            continue
        if name not in known:
            raise ConfigError(f"environment variable {name} is not a known setting")
        section, key = known[name]
        default = raw[section][key]
        raw[section][key] = _parse_env(name, text, default)


def _parse_env(name: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={text!r}: expected true or false")
    if isinstance(default, int | float):
        return text  # validated with the other values below
    if isinstance(default, list):
        try:
            value = json.loads(text) if text.strip() else []
        except ValueError as exc:
            raise ConfigError(f"{name}={text!r}: expected a JSON list") from exc
        return value
    return text


def _int(raw: Mapping[str, Any], section: str, key: str, lo: int, hi: int) -> int:
    value = raw[section][key]
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}.{key}={value!r}: expected a whole number") from exc
    if isinstance(value, float | bool) or not lo <= number <= hi:
        raise ConfigError(f"{section}.{key}={value!r}: expected a whole number {lo}..{hi}")
    return number


def _float(raw: Mapping[str, Any], section: str, key: str, lo: float, hi: float) -> float:
    value = raw[section][key]
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}.{key}={value!r}: expected a number") from exc
    if isinstance(value, bool) or not lo <= number <= hi:
        raise ConfigError(f"{section}.{key}={value!r}: expected a number {lo}..{hi}")
    return number


def _str(raw: Mapping[str, Any], section: str, key: str) -> str:
    value = raw[section][key]
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key}={value!r}: expected a string")
    return value


def _choice(raw: Mapping[str, Any], section: str, key: str, options: tuple[str, ...]) -> str:
    value = _str(raw, section, key)
    if value not in options:
        raise ConfigError(f"{section}.{key}={value!r}: expected one of {', '.join(options)}")
    return value


def _bool(raw: Mapping[str, Any], section: str, key: str) -> bool:
    value = raw[section][key]
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.{key}={value!r}: expected true or false")
    return value


def _str_list(raw: Mapping[str, Any], section: str, key: str) -> tuple[str, ...]:
    value = raw[section][key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}.{key}={value!r}: expected a list of strings")
    return tuple(value)


def _ice_servers(value: Any) -> tuple[IceServer, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"media.ice_servers={value!r}: expected a list of tables")
    servers = []
    for entry in value:
        if not isinstance(entry, Mapping) or "urls" not in entry:
            raise ConfigError(f"media.ice_servers entry {entry!r}: needs urls")
        urls = entry["urls"]
        urls_t = (urls,) if isinstance(urls, str) else tuple(urls)
        for url in urls_t:
            if not isinstance(url, str) or not url.startswith(("stun:", "turn:", "turns:")):
                raise ConfigError(f"media.ice_servers url {url!r}: expected stun:, turn: or turns:")
        servers.append(IceServer(urls_t, entry.get("username"), entry.get("credential")))
    return tuple(servers)


def _path(raw: Mapping[str, Any], section: str, key: str, base: Path) -> Path | None:
    text = _str(raw, section, key)
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path)


def build_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from defaults, ``config_file``, ``environ`` and ``overrides``.

    Args:
        config_file: an optional TOML file with the same sections as ``default.toml``.
        environ: the environment to read ``GATEWAY_*`` variables from (default: ``os.environ``).
        overrides: values that win over everything (tests use this).

    Raises:
        ConfigError: one line naming the key and the problem.
    """
    raw = _load_toml(DEFAULT_FILE)
    if config_file is not None:
        _merge(raw, _load_toml(config_file), str(config_file))
    _from_env(raw, os.environ if environ is None else environ)
    if overrides:
        _merge(raw, overrides, "overrides")

    cwd = Path.cwd()
    data_dir = _path(raw, "data", "dir", cwd)
    if data_dir is None:
        raise ConfigError("data.dir is empty: the service needs a data directory")

    tls_cert = _path(raw, "server", "tls_cert", cwd)
    tls_key = _path(raw, "server", "tls_key", cwd)
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("server.tls_cert and server.tls_key must be set together")
    for name, p in (("server.tls_cert", tls_cert), ("server.tls_key", tls_key)):
        if p is not None and not p.is_file():
            raise ConfigError(f"{name}={str(p)!r}: file not found")

    database_url = _str(raw, "database", "url") or f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}"
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"database.url={database_url!r}: expected sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    redis_url = _str(raw, "redis", "url") or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis.url={redis_url!r}: expected redis://, rediss:// or unix://")

    log_level = _str(raw, "server", "log_level").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"server.log_level={log_level!r}: expected DEBUG, INFO, WARNING or ERROR")

    codec = _str(raw, "media", "codec").lower()
    if codec not in ("vp8", "h264"):
        raise ConfigError(f"media.codec={codec!r}: expected vp8 or h264")

    automatic = _str_list(raw, "recording", "automatic")
    for kind in automatic:
        if kind not in SESSION_KINDS:
            raise ConfigError(f"recording.automatic: unknown session kind {kind!r}")

    retention = {kind: _int(raw, "retention", kind, 1, 36500) for kind in SESSION_KINDS}
    recordings_dir = _path(raw, "recording", "dir", cwd) or data_dir / "recordings"
    holidays_dir = _path(raw, "deadlines", "holidays_dir", cwd) or PACKAGE_DIR / "holidays"

    return Settings(
        host=_str(raw, "server", "host") or "127.0.0.1",
        port=_int(raw, "server", "port", 0, 65535),
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind_https_proxy=_bool(raw, "server", "behind_https_proxy"),
        log_level=log_level,
        log_format=_choice(raw, "server", "log_format", ("text", "json")),
        hub_id=_str(raw, "server", "hub_id"),
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=_str(raw, "redis", "prefix") or "pg",
        secret_key=_str(raw, "security", "secret_key"),
        data_key=_str(raw, "security", "data_key"),
        login_max_failures=_int(raw, "security", "login_max_failures", 1, 1000),
        login_max_failures_per_address=_int(
            raw, "security", "login_max_failures_per_address", 1, 100_000
        ),
        login_lockout_s=_float(raw, "security", "login_lockout_s", 1, 86400),
        session_ttl_h=_float(raw, "security", "session_ttl_h", 0.01, 24 * 30),
        invite_default_ttl_h=_float(raw, "security", "invite_default_ttl_h", 0.01, 24 * 30),
        max_message_bytes=_int(raw, "signaling", "max_message_bytes", 1024, 1 << 20),
        max_messages_per_s=_float(raw, "signaling", "max_messages_per_s", 1, 10000),
        heartbeat_timeout_s=_float(raw, "signaling", "heartbeat_timeout_s", 1, 600),
        resume_window_s=_float(raw, "signaling", "resume_window_s", 0, 3600),
        outbound_queue=_int(raw, "signaling", "outbound_queue", 8, 100000),
        in_process_worker=_bool(raw, "media", "in_process_worker"),
        codec=codec,
        ice_servers=_ice_servers(raw["media"]["ice_servers"]),
        turn_secret=_str(raw, "media", "turn_secret"),
        turn_urls=_str_list(raw, "media", "turn_urls"),
        turn_ttl_s=_int(raw, "media", "turn_ttl_s", 60, 7 * 86400),
        ice_loopback_only=_bool(raw, "media", "ice_loopback_only"),
        spread_cpu_pct=_float(raw, "media", "spread_cpu_pct", 0, 100),
        recordings_dir=recordings_dir,
        recording_automatic=frozenset(automatic),
        segment_minutes=_float(raw, "recording", "segment_minutes", 1, 24 * 60),
        retention_days=retention,
        holidays_dir=holidays_dir,
    )


def with_secret_key(settings: Settings) -> Settings:
    """Fill an empty secret key from ``<data.dir>/secret.key``, creating it once (mode 0600).

    The key signs invite tokens; it never lives in the repository.
    """
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            raise ConfigError("security.secret_key: at least 32 characters expected")
        return settings
    import secrets  # noqa: PLC0415  (only needed on this path)

    path = settings.data_dir / "secret.key"
    try:
        key = path.read_text().strip() if path.exists() else ""
        if not key:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.write_text(key + "\n")
            path.chmod(0o600)
    except OSError as exc:
        raise ConfigError(
            f"data.dir={str(settings.data_dir)!r}: cannot keep the secret key: {exc}"
        ) from exc
    return dataclasses.replace(settings, secret_key=key)


DATA_KEY_FILE = "data.key"


def data_key_path(settings: Settings) -> Path:
    """Where the generated data keyring lives: ``<data.dir>/data.key``."""
    return settings.data_dir / DATA_KEY_FILE


def with_data_key(settings: Settings) -> Settings:
    """Fill an empty ``security.data_key`` from ``<data.dir>/data.key``, creating it once (0600).

    The keyring seals identity numbers in the database (records/keyring.py checks its form).
    Losing the file makes every stored identity number unreadable: back it up with the
    database, apart from it.
    """
    if settings.data_key:
        return settings
    import base64  # noqa: PLC0415  (only needed on this path)
    import secrets  # noqa: PLC0415

    path = data_key_path(settings)
    try:
        ring = path.read_text().strip() if path.exists() else ""
        if not ring:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            ring = "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            path.write_text(ring + "\n")
            path.chmod(0o600)
    except OSError as exc:
        raise ConfigError(
            f"data.dir={str(settings.data_dir)!r}: cannot keep the data key: {exc}"
        ) from exc
    return dataclasses.replace(settings, data_key=ring)


def write_data_keyring(settings: Settings, text: str) -> Path:
    """Replace ``<data.dir>/data.key`` with ``text`` atomically (mode 0600); its path.

    Written to a temporary file first, then renamed: a crash leaves the old or the new
    keyring, never half of one.
    """
    path = data_key_path(settings)
    tmp = path.with_name(path.name + ".tmp")
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text.strip() + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"{str(path)!r}: cannot write the data key: {exc}") from exc
    return path
