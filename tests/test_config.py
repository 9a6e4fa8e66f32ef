"""mom.conf loading: upstream files load unchanged; mistakes name the key."""
import configparser
import logging
import textwrap

import pytest

from mom import config
from mom.config import ConfigError


def write(tmp_path, text):
    path = tmp_path / "mom.conf"
    path.write_text(textwrap.dedent(text))
    return str(path)


def overrides(**sections):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_dict(sections)
    return parser


def test_defaults_without_a_file():
    conf = config.load("")
    assert conf.hypervisor_interface == "libvirt"
    assert conf.sample_history_length == 10
    assert conf.controllers == ("Balloon",)
    assert conf.intervals.policy_engine == 10.0
    assert conf.rpc is None
    assert conf.vdsm.ssl is None          # follow VDSM's vdsm.conf


# VDSM's own mom.conf layout (colon syntax, [vdsm] section, all four controllers).
VDSM_STYLE = """\
    ### MOM Configuration for VDSM ###
    [main]
    main-loop-interval: 15
    host-monitor-interval: 15
    guest-monitor-interval: 15
    guest-manager-interval: 15
    hypervisor-interface: vdsm
    policy-engine-interval: 15
    controllers: Balloon, KSM, CpuTune, IoTune
    sample-history-length: 10
    plot-dir:
    rpc-port: /var/run/vdsm/mom-vdsm.sock
    policy-dir:

    [vdsm]
    pki-dir=/etc/pki/vdsm
    key-file=keys/vdsmkey.pem
    cert-file=certs/vdsmcert.pem
    ca-cert-file=certs/cacert.pem
    host=127.0.0.1
    port=54321
    request-timeout=10

    [logging]
    log: stdio
    verbosity: info
    max-bytes: 2097152
    backup-count: 5

    [host]
    collectors: HostMemory, HostKSM, HostCpu

    [guest]
    collectors: GuestMemoryOptional, GuestBalloonOptional, GuestCpuTune, GuestIoTuneOptional

    [Collector: GuestQemuAgent]
    socket_path: /var/lib/libvirt/qemu
    """


def test_upstream_vdsm_style_file_loads(tmp_path):
    conf = config.load(write(tmp_path, VDSM_STYLE))
    assert conf.intervals.host_monitor == 15.0
    assert conf.controllers == ("Balloon", "KSM", "CpuTune", "IoTune")
    assert conf.rpc == "/var/run/vdsm/mom-vdsm.sock"
    assert conf.plugin_options("Collector", "GuestQemuAgent") == {
        "socket_path": "/var/lib/libvirt/qemu"}
    assert conf.vdsm.port == 54321
    assert conf.vdsm.pki_path(conf.vdsm.key_file) == "/etc/pki/vdsm/keys/vdsmkey.pem"


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, "[main]\nsample-history-length: 5\n")
    conf = config.load(path, overrides(main={"sample-history-length": "3"}))
    assert conf.sample_history_length == 3


@pytest.mark.parametrize("text, words", [
    ("[main]\nhost-monitor-intervall: 5\n", ["host-monitor-intervall", "[main]"]),
    ("[mian]\nhost-monitor-interval: 5\n", ["[mian]"]),
    ("[main]\nhost-monitor-interval: five\n", ["host-monitor-interval", "'five'"]),
    ("[main]\npolicy-engine-interval: 0\n", ["policy-engine-interval", "'0'"]),
    ("[main]\nhost-monitor-interval: inf\n", ["host-monitor-interval", "'inf'"]),
    ("[main]\nguest-monitor-interval: nan\n", ["guest-monitor-interval", "'nan'"]),
    ("[main]\npolicy-engine-interval: 1e10\n", ["policy-engine-interval", "'1e10'"]),
    ("[main]\nguest-manager-interval: 1e-9\n", ["guest-manager-interval", "'1e-9'"]),
    ("[vdsm]\nrequest-timeout: inf\n", ["request-timeout", "'inf'"]),
    ("[vdsm]\nport: 99999\n", ["[vdsm] port", "99999"]),
    ("[vdsm]\nssl: maybe\n", ["[vdsm] ssl", "maybe"]),
    ("[main]\npolicy-max-seconds: 0\n", ["policy-max-seconds"]),
    ("[main]\nsample-history-length: 0\n", ["sample-history-length"]),
    ("[main]\nrpc-port: 70000\n", ["rpc-port", "70000"]),
    ("[main]\nrpc-port: relative.sock\n", ["rpc-port", "relative.sock"]),
    ("[logging]\nverbosity: chatty\n", ["verbosity", "chatty"]),
    ("[main]\ncontrollers: Balloon, Ballon\n", ["controllers", "Ballon"]),
    ("[host]\ncollectors: HostMemory, HostMemroy\n", ["[host] collectors", "HostMemroy"]),
    ("[guest]\ncollectors: HostMemory\n", ["[guest] collectors", "HostMemory", "host"]),
    ("[main]\nhypervisor-interface: xen\n", ["hypervisor-interface", "xen"]),
    ("[main]\npolicy: /a.policy\npolicy-dir: /b\n", ["policy", "policy-dir", "both"]),
])
def test_bad_values_name_the_key(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    for word in words:
        assert word in str(info.value)


def test_bad_override_is_refused_too():
    with pytest.raises(ConfigError, match="guest-monitor-interval"):
        config.load("", overrides(main={"guest-monitor-interval": "-1"}))
    with pytest.raises(ConfigError, match="no-such-key"):
        config.load("", overrides(main={"no-such-key": "1"}))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(str(tmp_path / "nope.conf"))


def test_unparsable_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(write(tmp_path, "no section header\n"))


@pytest.mark.parametrize("value, expected", [
    ("-1", None), ("", None), ("8888", 8888), ("/run/mom.sock", "/run/mom.sock")])
def test_rpc_port_forms(value, expected):
    assert config.load("", overrides(main={"rpc-port": value})).rpc == expected


@pytest.mark.parametrize("value, level", [
    ("debug", logging.DEBUG), ("5", logging.DEBUG), ("info", logging.INFO),
    ("4", logging.INFO), ("warn", logging.WARNING), ("3", logging.WARNING),
    ("error", logging.ERROR), ("2", logging.ERROR), ("critical", logging.CRITICAL),
    ("1", logging.CRITICAL), ("INFO", logging.INFO)])
def test_verbosity_by_name_or_number(value, level):
    assert config.parse_verbosity(value) == level


def test_fractional_intervals_are_allowed():
    conf = config.load("", overrides(main={"guest-monitor-interval": "0.1"}))
    assert conf.intervals.guest_monitor == 0.1


def test_settings_are_frozen():
    conf = config.load("")
    with pytest.raises(AttributeError):
        conf.plot_dir = "/tmp"            # type: ignore[misc]


def test_vdsm_ssl_set_in_mom_conf_wins(tmp_path):
    conf = config.load(write(tmp_path, "[vdsm]\nssl = false\n"))
    assert conf.vdsm.ssl is False
