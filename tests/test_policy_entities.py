"""What a policy sees of the Host and Guest entities (docs/policy-language.md, "Entities")."""
import pytest

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy import Evaluator, PolicyError, PolicySet


def guest(history, fields=None, variables=None):
    return Entity({"name": "vm1", "uuid": "u-1", "pid": 42}, history, fields, variables)


def run(text, **bindings):
    ev = Evaluator()
    for name, value in bindings.items():
        ev.bind(name, value)
    return ev.run(text)


def test_fields_of_the_latest_sample_are_attributes():
    g = guest([{"balloon_cur": 1}, {"balloon_cur": 2}])
    assert run("g.balloon_cur", g=g) == [2]


def test_declared_but_missing_optional_field_is_nil():
    g = guest([{"mem_free": 1}], fields={"mem_free", "swap_in"})
    assert run('g.swap_in (g.Stat "swap_in")', g=g) == [None, None]


def test_stat_and_stat_avg():
    g = guest([{"x": 1}, {"x": None}, {"x": 4}])
    assert run('(g.Stat "x") (g.StatAvg "x")', g=g) == [4, 2.5]


def test_stat_avg_without_values_is_zero():
    g = guest([{"x": None}], fields={"x"})
    assert run('(g.StatAvg "x")', g=g) == [0.0]


@pytest.mark.parametrize("method", ["Stat", "StatAvg"])
def test_undeclared_field_is_an_error(method):
    with pytest.raises(PolicyError) as info:
        run(f'(g.{method} "nope")', g=guest([{"x": 1}]))
    assert "no collector provides the field 'nope'" in str(info.value)


def test_properties():
    assert run('(g.Prop "name") (g.Prop "uuid") (g.Prop "pid") (g.Prop "other")',
               g=guest([{}])) == ["vm1", "u-1", 42, None]


def test_controls():
    g = guest([{}])
    assert run('(g.Control "balloon_target" 1024) (g.GetControl "balloon_target") '
               '(g.GetControl "unset")', g=g) == [1024, 1024, None]
    assert g.controls == {"balloon_target": 1024}


def test_variables_persist_from_one_evaluation_to_the_next():
    kept = {}
    policies = PolicySet({"p": '(with Guests g (g.SetVar "n" (+ 1 (or (g.GetVar "n") 0))))'})
    for expected in (1, 2, 3):
        g = guest([{}], variables=kept)
        policies.evaluate(guest([{}]), [g])
        assert run('(g.GetVar "n")', g=g) == [expected]


def test_io_tune_devices_are_read_and_set_through_attributes_and_setters():
    dev = IoTuneDevice("vda", "/dev/vda", maximum={"total_bytes_sec": 500, "read_iops_sec": 7})
    g = guest([{"io_tune": [dev]}])
    text = """
    (with g.io_tune d {
        (d.setTotalBytesSec d.maximum.total_bytes_sec)
        (d.setReadIopsSec (* 2 d.maximum.read_iops_sec))
        d.name })
    """
    assert run(text, g=g) == [["vda"]]
    assert dev.tune["total_bytes_sec"] == 500 and dev.tune["read_iops_sec"] == 14
    assert dev.changed()
