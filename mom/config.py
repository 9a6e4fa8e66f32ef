"""mom.conf: defaults, loading and validation.

The file format and key names are upstream MOM's, so that existing mom.conf
files (including VDSM's) load unchanged.  Validation happens once, in the
MOM constructor, before any thread starts: a wrong key or value is a
:class:`ConfigError` that names the section, the key and the value.
"""
from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Callable
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
        # Group given access (mode 0660) to a unix rpc-port socket; empty: 0600.
        "rpc-socket-group": "",
        "policy": "",
        "policy-dir": "",
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
        "ssl": "true",
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
    """A logging level from upstream's names or numbers (5=debug ... 1=critical, 0=off)."""
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
         overrides: configparser.ConfigParser | None = None) -> configparser.ConfigParser:
    """Defaults, then ``conf_file`` (if not ''), then ``overrides``; validated."""
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
    validate(config)
    return config


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


def _positive_number(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


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


def validate(config: configparser.ConfigParser) -> None:
    """Check every value MOM will use; raise ConfigError naming the key."""
    for key in ("main-loop-interval", "host-monitor-interval",
                "guest-monitor-interval", "guest-manager-interval",
                "policy-engine-interval"):
        get_interval(config, key)
    _require(config, "main", "sample-history-length", _positive_int,
             "a whole number of at least 1")
    _require(config, "main", "guest-manager-multi-thread", _boolean, "true or false")
    rpc_port(config)
    if config.get("main", "policy").strip() and config.get("main", "policy-dir").strip():
        raise ConfigError(
            "[main] policy and policy-dir are both set "
            f"({config.get('main', 'policy')!r}, {config.get('main', 'policy-dir')!r}); "
            "set only one of them")
    _require(config, "logging", "verbosity", parse_verbosity,
             "a verbosity (debug, info, warn, error, critical or 0-5)")
    _require(config, "logging", "max-bytes", _non_negative_int, "a number of bytes")
    _require(config, "logging", "backup-count", _non_negative_int, "a whole number")
    _require(config, "vdsm", "port", _positive_int, "a port number")
    _require(config, "vdsm", "request-timeout", _positive_number, "a number of seconds")
    _require(config, "vdsm", "ssl", _boolean, "true or false")

    # Plugins: names must be known, and of the right kind.
    from mom import collectors, controllers, hypervisor

    for section in ("host", "guest"):
        for name in split_list(config.get(section, "collectors")):
            try:
                cls = collectors.get_collector(name)
            except KeyError as err:
                raise ConfigError(f"[{section}] collectors: {err.args[0]}") from None
            kind = getattr(cls, "kind", section)
            if kind != section:
                raise ConfigError(
                    f"[{section}] collectors: {name!r} is a {kind} collector")
    for name in split_list(config.get("main", "controllers")):
        try:
            controllers.get_controller(name)
        except KeyError as err:
            raise ConfigError(f"[main] controllers: {err.args[0]}") from None
    iface = config.get("main", "hypervisor-interface").strip()
    if iface not in hypervisor.interface_names():
        raise ConfigError(
            f"[main] hypervisor-interface = {iface!r} is not one of "
            + ", ".join(hypervisor.interface_names()))


def get_interval(config: configparser.ConfigParser, key: str) -> float:
    """An interval of [main] in seconds (fractions allowed, for tests)."""
    return _require(config, "main", key, _positive_number, "a positive number of seconds")


def rpc_port(config: configparser.ConfigParser) -> int | str | None:
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


def plugin_section(config: configparser.ConfigParser, kind: str,
                   name: str) -> dict[str, str]:
    """Options of ``[Collector: NAME]`` / ``[Controller: NAME]``, if any."""
    section = f"{kind}: {name}"
    return dict(config.items(section, raw=True)) if config.has_section(section) else {}

