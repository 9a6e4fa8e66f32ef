"""The entity is what every policy reads: fields, Stat/StatAvg, controls, vars."""
import pytest

from mom.entity import Entity, UndeclaredFieldError


def make(history, fields=None, variables=None):
    return Entity({"name": "vm1", "uuid": "u-1", "pid": 42}, history, fields, variables)


def test_latest_sample_fields_are_attributes():
    e = make([{"mem_free": 10, "balloon_cur": 100}, {"mem_free": 30, "balloon_cur": 200}])
    assert e.mem_free == 30
    assert e.balloon_cur == 200


def test_missing_attribute_reads_as_none():
    e = make([{"mem_free": 10}])
    assert e.no_such_field is None


def test_declared_optional_field_missing_in_sample_is_none():
    e = make([{"mem_free": 10}], fields={"mem_free", "swap_in"})
    assert e.swap_in is None
    assert e.Stat("swap_in") is None


def test_stat_avg_ignores_none_and_is_float():
    e = make([{"x": 1}, {"x": None}, {"x": 4}], fields={"x"})
    assert e.StatAvg("x") == 2.5
    assert isinstance(e.StatAvg("x"), float)


def test_stat_avg_without_values_is_zero():
    e = make([{"x": None}], fields={"x"})
    assert e.StatAvg("x") == 0.0


def test_undeclared_field_is_an_error():
    e = make([{"x": 1}])
    with pytest.raises(UndeclaredFieldError, match="'y'"):
        e.Stat("y")
    with pytest.raises(UndeclaredFieldError):
        e.StatAvg("y")


def test_properties_controls_and_variables():
    variables = {}
    e = make([{"x": 1}], variables=variables)
    assert e.Prop("name") == "vm1"
    assert e.Prop("pid") == 42
    assert e.Prop("nope") is None
    assert e.GetControl("balloon_target") is None
    e.Control("balloon_target", 1024)
    assert e.GetControl("balloon_target") == 1024
    assert e.controls == {"balloon_target": 1024}
    e.SetVar("count", 3)
    assert variables == {"count": 3}
    # A later entity built on the same variables dict sees the value.
    assert make([{"x": 2}], variables=variables).GetVar("count") == 3
