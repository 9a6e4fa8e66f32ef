"""mom.conf: defaults, loading and validation.

The file format and key names are upstream MOM's, so that existing mom.conf
files (including VDSM's) load unchanged.  Validation happens once, in the
MOM constructor, before any thread starts: a wrong key or value is a
:class:`ConfigError` that names the section, the key and the value.
"""
from __future__ import annotations

import configparser
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class ConfigError(Exception):
    """mom.conf holds something MOM cannot use."""


DEFAULTS: dict[str, dict[str, str]] = {
    "main": {
        "main-loop-interval": "5",
        "host-monitor-interval": "5",
        "guest-monitor-interval": "5",
        "guest-manager-interval": "5",
        "policy-engine-interval": "10",
        "hypervisor-interface": "libvirt",
        "libvirt-hypervisor-uri": "",
        "controllers": "Balloon",
        "sample-history-length": "10",
        "plot-dir": "",
        "rpc-port": "-1",
        # Group that may use the unix socket (mode 0660); empty: owner only (0600).
        "rpc-socket-group": "",
        "policy": "",
        "policy-dir": "",
        # What one policy evaluation may spend before it is stopped
        # (mom.policy.budget's defaults: far above 2,000 guests' needs).
        "policy-max-steps": "2000000",
        "policy-max-seconds": "5",
        # Upstream ran one thread per guest when this was true.  MOM has a
        # fixed set of threads whatever it says; the key is accepted so that
        # existing files still load.
        "guest-manager-multi-thread": "true",
    },
    "logging": {
        "log": "stdio",
        "verbosity": "info",
        "max-bytes": "2097152",
        "backup-count": "5",
    },
    "host": {
        "collectors": "HostMemory",
        # Where host collectors read /proc and /sys: for tests and chroots.
        "proc-root": "/proc",
        "sys-root": "/sys",
    },
    "guest": {
        "collectors": "GuestQemuProc, GuestMemory, GuestBalloon",
    },
    "vdsm": {
        "pki-dir": "/etc/pki/vdsm",
        "key-file": "keys/vdsmkey.pem",
        "cert-file": "certs/vdsmcert.pem",
        "ca-cert-file": "certs/cacert.pem",
        "host": "127.0.0.1",
        "port": "54321",
        "request-timeout": "10",
        # Longest wait between attempts to reach VDSM (waits start at 1 s, doubling).
        "max-retry-interval": "60",
        # Empty: follow VDSM's own vdsm.conf ([vars] ssl, true when absent).
        "ssl": "",
    },
}

# Sections whose keys belong to one plugin and are not checked here:
# "[Collector: GuestQemuAgent]", "[Controller: Balloon]".
PLUGIN_SECTION_PREFIXES = ("Collector:", "Controller:")

VERBOSITY = {
    "5": logging.DEBUG, "debug": logging.DEBUG,
    "4": logging.INFO, "info": logging.INFO,
    "3": logging.WARNING, "warn": logging.WARNING, "warning": logging.WARNING,
    "2": logging.ERROR, "error": logging.ERROR,
    "1": logging.CRITICAL, "critical": logging.CRITICAL,
    "0": logging.CRITICAL + 10,     # nothing at all
}


def parse_verbosity(value: str | int) -> int:
    """A logging level from upstream's names or numbers (5=debug ... 1=critical)."""
    level = VERBOSITY.get(str(value).strip().lower())
    if level is None:
        raise ValueError(
            f"verbosity {value!r} is not one of debug/info/warn/error/critical or 0-5")
    return level


def split_list(value: str) -> list[str]:
    """'Balloon, KSM' -> ['Balloon', 'KSM']."""
    return [item.strip() for item in value.split(",") if item.strip()]


def new_config() -> configparser.ConfigParser:
    """A ConfigParser holding only the defaults."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str          # keys are case-sensitive, as upstream
    config.read_dict(DEFAULTS)
    return config


def load(conf_file: str = "",
         overrides: configparser.ConfigParser | None = None) -> Settings:
    """Defaults, then ``conf_file`` (if not ''), then ``overrides``;
    validated and typed."""
    config = new_config()
    if conf_file:
        if not os.path.isfile(conf_file):
            raise ConfigError(f"configuration file {conf_file!r} does not exist")
        files = _read_file(config, conf_file)
        _check_keys(files, conf_file)
        config.read_dict(files)
    if overrides is not None:
        extra = {s: dict(overrides.items(s, raw=True)) for s in overrides.sections()}
        _check_keys(extra, "the overrides")
        config.read_dict(extra)
    return _settings(config)


def defaults() -> Settings:
    """The built-in defaults, typed (for tests and tools)."""
    return _settings(new_config())


def _read_file(config: configparser.ConfigParser, path: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except (configparser.Error, OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    return {s: dict(parser.items(s, raw=True)) for s in parser.sections()}


def _check_keys(sections: dict[str, dict[str, str]], origin: str) -> None:
    for section, items in sections.items():
        if section.startswith(PLUGIN_SECTION_PREFIXES):
            continue
        if section not in DEFAULTS:
            raise ConfigError(
                f"unknown section [{section}] in {origin}; known sections: "
                + ", ".join(f"[{s}]" for s in DEFAULTS))
        for key in items:
            if key not in DEFAULTS[section]:
                raise ConfigError(
                    f"unknown key {key!r} in section [{section}] of {origin}")


def _require(config: configparser.ConfigParser, section: str, key: str,
             convert: Callable[[str], Any], what: str) -> Any:
    value = config.get(section, key)
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"[{section}] {key} = {value!r} is not {what}") from None


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in configparser.ConfigParser.BOOLEAN_STATES:
        raise ValueError(value)
    return configparser.ConfigParser.BOOLEAN_STATES[lowered]


# Intervals: fractions of a second are allowed (tests use them); below
# MIN_INTERVAL the worker would spin, above MAX_INTERVAL MOM would never act.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 86400.0

INTERVAL_KEYS = ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                 "guest-manager-interval", "policy-engine-interval")


@dataclass(frozen=True)
class Intervals:
    """Seconds between runs of each step of the cycle (upstream's keys)."""
    main_loop: float
    host_monitor: float
    guest_monitor: float
    guest_manager: float
    policy_engine: float


@dataclass(frozen=True)
class VdsmSettings:
    """``[vdsm]``: how process mode reaches VDSM."""
    pki_dir: str
    key_file: str
    cert_file: str
    ca_cert_file: str
    host: str
    port: int
    request_timeout: float
    ssl: bool | None          # None: not set in mom.conf, follow vdsm.conf
    max_retry_interval: float = 60.0

    def pki_path(self, name: str) -> str:
        """A key/cert file name resolved against pki-dir."""
        return os.path.join(self.pki_dir, name)


@dataclass(frozen=True)
class Settings:
    """mom.conf, validated and typed: what the rest of MOM reads."""
    intervals: Intervals
    hypervisor_interface: str
    libvirt_uri: str
    controllers: tuple[str, ...]
    sample_history_length: int
    plot_dir: str
    rpc: int | str | None          # None off, a TCP port, or a unix socket path
    rpc_socket_group: str
    policy: str
    policy_dir: str
    policy_max_steps: int
    policy_max_seconds: float
    log: str
    verbosity: int
    max_bytes: int
    backup_count: int
    host_collectors: tuple[str, ...]
    guest_collectors: tuple[str, ...]
    proc_root: str
    sys_root: str
    vdsm: VdsmSettings
    # "[Collector: NAME]" / "[Controller: NAME]" sections, for plugins
    plugin_sections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def plugin_options(self, kind: str, name: str) -> dict[str, str]:
        """Options of ``[Collector: NAME]`` / ``[Controller: NAME]``, if any."""
        return dict(self.plugin_sections.get(f"{kind}: {name}", {}))


def _settings(config: configparser.ConfigParser) -> Settings:
    """Check every value MOM will use and type it; ConfigError names the key."""
    def text(section: str, key: str) -> str:
        return config.get(section, key).strip()

    intervals = Intervals(*(_interval(config, key) for key in INTERVAL_KEYS))
    _require(config, "main", "guest-manager-multi-thread", _boolean, "true or false")
    if text("main", "policy") and text("main", "policy-dir"):
        raise ConfigError(
            "[main] policy and policy-dir are both set "
            f"({config.get('main', 'policy')!r}, {config.get('main', 'policy-dir')!r}); "
            "set only one of them")
    ssl = text("vdsm", "ssl")
    vdsm = VdsmSettings(
        pki_dir=text("vdsm", "pki-dir"), key_file=text("vdsm", "key-file"),
        cert_file=text("vdsm", "cert-file"), ca_cert_file=text("vdsm", "ca-cert-file"),
        host=text("vdsm", "host"),
        port=_require(config, "vdsm", "port", _port, "a port number (1-65535)"),
        request_timeout=_require(config, "vdsm", "request-timeout", _seconds,
                                 "a number of seconds"),
        ssl=_require(config, "vdsm", "ssl", _boolean, "true or false") if ssl else None,
        max_retry_interval=_require(config, "vdsm", "max-retry-interval", _seconds,
                                    "a number of seconds"))
    settings = Settings(
        intervals=intervals,
        hypervisor_interface=text("main", "hypervisor-interface"),
        libvirt_uri=text("main", "libvirt-hypervisor-uri"),
        controllers=tuple(split_list(config.get("main", "controllers"))),
        sample_history_length=_require(config, "main", "sample-history-length",
                                       _history_length, "a whole number from 1 to 10000"),
        plot_dir=text("main", "plot-dir"),
        rpc=_rpc_port(config),
        rpc_socket_group=text("main", "rpc-socket-group"),
        policy=text("main", "policy"),
        policy_dir=text("main", "policy-dir"),
        policy_max_steps=_require(config, "main", "policy-max-steps", _positive_int,
                                  "a whole number of at least 1"),
        policy_max_seconds=_require(config, "main", "policy-max-seconds", _seconds,
                                    "a number of seconds"),
        log=text("logging", "log") or "stdio",
        verbosity=_require(config, "logging", "verbosity", parse_verbosity,
                           "a verbosity (debug, info, warn, error, critical or 0-5)"),
        max_bytes=_require(config, "logging", "max-bytes", _non_negative_int,
                           "a number of bytes"),
        backup_count=_require(config, "logging", "backup-count", _non_negative_int,
                              "a whole number"),
        host_collectors=tuple(split_list(config.get("host", "collectors"))),
        guest_collectors=tuple(split_list(config.get("guest", "collectors"))),
        proc_root=text("host", "proc-root") or "/proc",
        sys_root=text("host", "sys-root") or "/sys",
        vdsm=vdsm,
        plugin_sections=MappingProxyType({
            s: MappingProxyType(dict(config.items(s, raw=True)))
            for s in config.sections() if s.startswith(PLUGIN_SECTION_PREFIXES)}),
    )
    _check_plugins(settings)
    return settings


def _check_plugins(settings: Settings) -> None:
    """Plugin names must be known, and of the right kind."""
    from mom import collectors, controllers, hypervisor

    for section, names in (("host", settings.host_collectors),
                           ("guest", settings.guest_collectors)):
        for name in names:
            try:
                cls = collectors.get_collector(name)
            except KeyError as err:
                raise ConfigError(f"[{section}] collectors: {err.args[0]}") from None
            kind = getattr(cls, "kind", section)
            if kind != section:
                raise ConfigError(
                    f"[{section}] collectors: {name!r} is a {kind} collector")
    for name in settings.controllers:
        try:
            controllers.get_controller(name)
        except KeyError as err:
            raise ConfigError(f"[main] controllers: {err.args[0]}") from None
    iface = settings.hypervisor_interface
    if iface not in hypervisor.interface_names():
        raise ConfigError(
            f"[main] hypervisor-interface = {iface!r} is not one of "
            + ", ".join(hypervisor.interface_names()))


def _interval(config: configparser.ConfigParser, key: str) -> float:
    return _require(config, "main", key, _bounded_interval,
                    f"a number of seconds from {MIN_INTERVAL:g} to {MAX_INTERVAL:g}")


def _bounded_interval(value: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and MIN_INTERVAL <= number <= MAX_INTERVAL):
        raise ValueError(value)
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and 0 < number <= MAX_INTERVAL):
        raise ValueError(value)
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError(value)
    return number


def _history_length(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 10000:
        raise ValueError(value)
    return number


def _rpc_port(config: configparser.ConfigParser) -> int | str | None:
    """None when RPC is off, a TCP port number, or a unix socket path."""
    value = config.get("main", "rpc-port").strip()
    if value in ("", "-1"):
        return None
    if value.lstrip("-").isdigit():
        port = int(value)
        if not 0 < port < 65536:
            raise ConfigError(
                f"[main] rpc-port = {value!r} is not -1, a port 1-65535 or a socket path")
        return port
    if not value.startswith("/"):
        raise ConfigError(
            f"[main] rpc-port = {value!r} is not -1, a port 1-65535 or an absolute socket path")
    return value
