"""dry_run: the controls a policy set would choose for made-up statistics."""
import pytest

from mom.policy import PolicyError, dry_run


def test_controls_of_host_and_guests_in_input_order():
    policies = {
        "a": '(Host.Control "ksm_run" (if (< Host.mem_free 100) 1 0))',
        "b": '(with Guests g (g.Control "balloon_target" (* 2 g.balloon_cur)))',
    }
    result = dry_run(policies, {"mem_free": 50}, [{"balloon_cur": 10}, {"balloon_cur": 20}])
    assert result == {"host": {"ksm_run": 1},
                      "guests": [{"balloon_target": 20}, {"balloon_target": 40}]}


def test_histories_feed_stat_avg():
    policies = {"p": '(Host.Control "avg" (Host.StatAvg "mem_free"))'
                     '(with Guests g (g.Control "avg" (g.StatAvg "x")))'}
    result = dry_run(policies, [{"mem_free": 10}, {"mem_free": 30}],
                     [[{"x": 1}, {"x": 2}, {"x": 6}], {"x": 5}])
    assert result == {"host": {"avg": 20.0}, "guests": [{"avg": 3.0}, {"avg": 5.0}]}


def test_guest_properties():
    policies = {"p": '(with Guests g (g.Control "who" (+ (g.Prop "name") (g.Prop "uuid"))))'
                     '(with Guests g (g.Control "pid" (g.Prop "pid")))'}
    result = dry_run(policies, {}, [{"name": "vm1", "uuid": "-u1", "pid": 7, "x": 1}])
    assert result["guests"] == [{"who": "vm1-u1", "pid": 7}]


def test_properties_are_not_stats():
    with pytest.raises(PolicyError) as info:
        dry_run({"p": '(with Guests g (g.Stat "name"))'}, {}, [{"name": "vm1"}])
    assert "no collector provides the field 'name'" in str(info.value)


def test_policies_run_in_sorted_name_order():
    result = dry_run({"2": '(Host.Control "v" x)', "1": "(defvar x 5)"}, {}, [])
    assert result == {"host": {"v": 5}, "guests": []}


def test_io_tune_devices_changed_by_the_policy_are_reported():
    policies = {"p": """
        (with Guests g
            (if (null g.io_tune) 0
                (with g.io_tune d (d.setTotalBytesSec d.maximum.total_bytes_sec))))
    """}
    vda = {"name": "vda", "path": "/dev/vda", "maximum": {"total_bytes_sec": 100},
           "current": {"total_bytes_sec": 0}}
    vdb = {"name": "vdb", "path": "/dev/vdb", "maximum": {"total_bytes_sec": 5},
           "current": {"total_bytes_sec": 5}}
    result = dry_run(policies, {}, [{"io_tune": [vda, vdb]}, {"x": 1}])
    assert result["guests"][0] == {"io_tune": [{
        "name": "vda", "path": "/dev/vda",
        "ioTune": {"total_bytes_sec": 100, "read_bytes_sec": 0, "write_bytes_sec": 0,
                   "total_iops_sec": 0, "read_iops_sec": 0, "write_iops_sec": 0}}]}
    assert result["guests"][1] == {}


def test_syntax_error_raises_with_policy_name():
    with pytest.raises(PolicyError) as info:
        dry_run({"ok": "1", "broken": "(+ 1"}, {}, [])
    assert info.value.policy == "broken"


def test_evaluation_error_fails_the_whole_run():
    with pytest.raises(PolicyError) as info:
        dry_run({"p": '(Host.Control "a" 1) (with Guests g (+ g.x 1))'}, {}, [{"x": None}])
    assert info.value.policy == "p" and "(+ nil 1) failed" in str(info.value)
