"""The sandbox: a policy reaches only what docs/policy-language.md documents.

Policies arrive over RPC and run inside MOM; a dotted name must never walk
into Python (``Host.__init__.__globals__`` ...).  Every refusal is a
PolicyError with the place in the text.
"""
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy import Evaluator, PolicyError, PolicySet, cli, compile_policy, dry_run

EXPLOIT = '(defvar b (Host.__init__.__globals__.get "__builtins__"))'


def host():
    return Entity({"name": "host"}, [{"mem_free": 5, "mem_available": 10}],
                  fields={"mem_free", "mem_available", "swap_in"})


def device():
    return IoTuneDevice("vda", "/dev/vda", maximum={"total_bytes_sec": 100},
                        guaranteed={"read_iops_sec": 7})


def evaluator():
    ev = Evaluator("p")
    ev.bind("Host", host())
    ev.bind("guest", Entity({"name": "vm1"}, [{"balloon_cur": 4, "io_tune": [device()]}]))
    ev.bind("dev", device())
    ev.bind("s", "abc")
    ev.bind("n", 5)
    ev.bind("L", [1, "x"])
    return ev


def refused(text):
    with pytest.raises(PolicyError) as info:
        evaluator().run(text)
    error = info.value
    assert error.line is not None and error.column is not None, error
    return error


# -- the classic exploit ------------------------------------------------------
def test_the_builtins_exploit_is_refused_before_the_policy_loads():
    with pytest.raises(PolicyError) as info:
        compile_policy("(defvar x 1)\n" + EXPLOIT, "evil")
    error = info.value
    assert (error.policy, error.line, error.column) == ("evil", 2, 12)
    assert "'__init__' cannot be used in a policy" in str(error)


def test_setting_the_exploit_as_a_policy_is_refused_and_the_set_stays():
    ps = PolicySet({"good": "(+ 1 2)"})
    with pytest.raises(PolicyError):
        ps.set_policy("evil", EXPLOIT)
    assert ps.get_policies() == {"good": "(+ 1 2)"}


def test_underscore_names_are_refused_even_where_the_code_never_runs():
    with pytest.raises(PolicyError) as info:
        compile_policy("(if 0 (Host.Stat._x 1) 0)")
    assert info.value.column == 8


@pytest.mark.parametrize("text, fragment", [
    ("Host.Stat.__self__", "'__self__' cannot be used"),
    ("(guest.Control.__func__)", "'__func__' cannot be used"),
    ("Host.__class__", "'__class__' cannot be used"),
    ("(with guest.io_tune d d._set)", "'_set' cannot be used"),
    ("Host._history", "'_history' cannot be used"),
    ("dev.maximum.__dict__", "'__dict__' cannot be used"),
])
def test_names_starting_with_an_underscore(text, fragment):
    assert fragment in str(refused(text))


@pytest.mark.parametrize("text, fragment", [
    ("s.upper", "'s.upper': a string has no attributes"),
    ("(s.upper)", "'s.upper': a string has no attributes"),
    ("n.real", "'n.real': a number has no attributes"),
    ("(L.append 1)", "'L.append': a list has no attributes"),
    ("(defvar x nil) x.y", "'x.y': nil has no attributes"),
    ("Host.Stat.im_self", "'Host.Stat.im_self': a function has no attributes"),
    ("(defvar st Host.Stat) (st.x)", "'st.x': a function has no attributes"),
    ("dev.tune", "'dev.tune': an I/O device has no attribute 'tune'"),
    ("(dev.as_tunable)", "an I/O device has no attribute 'as_tunable'"),
    ("(dev.changed)", "an I/O device has no attribute 'changed'"),
    ("dev.maximum.items", "an I/O limit record has no attribute 'items'"),
    ("Host.controls", "'Host.controls': no statistic 'controls' is declared for host"),
    ("Host.properties", "no statistic 'properties'"),
    ("Host.fields", "no statistic 'fields'"),
    ("(Host.controls)", "no statistic 'controls'"),
])
def test_attributes_outside_the_table_are_refused(text, fragment):
    assert fragment in str(refused(text))


def test_a_string_method_written_on_a_literal_is_not_even_a_name():
    with pytest.raises(PolicyError) as info:
        compile_policy('("abc".upper)')
    assert info.value.line == 1


def test_a_statistic_named_like_an_entity_property_is_the_statistic():
    e = Entity({"name": "vm"}, [{"controls": 3, "Stat": 4}])
    ev = Evaluator()
    ev.bind("g", e)
    assert ev.run("g.controls g.Stat") == [3, 4]
    # Called, a method of the table stays the method, whatever the statistics are called.
    assert ev.run('(g.Stat "controls")') == [3]


# -- what the language documents is reachable ---------------------------------
def test_every_documented_entity_member_works():
    ev = evaluator()
    text = """
    Host.mem_free Host.swap_in (Host.Stat "mem_free") (Host.StatAvg "mem_free")
    (Host.Prop "name") (Host.Control "ksm_run" 1) (Host.GetControl "ksm_run")
    (Host.SetVar "k" 2) (Host.GetVar "k")
    """
    assert ev.run(text) == [5, None, 5, 5.0, "host", 1, 1, 2, 2]


def test_every_documented_device_member_works():
    ev = evaluator()
    setters = ["setTotalBytesSec", "setReadBytesSec", "setWriteBytesSec",
               "setTotalIopsSec", "setReadIopsSec", "setWriteIopsSec"]
    limits = ["total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec",
              "read_iops_sec", "write_iops_sec"]
    text = " ".join(["dev.name", "dev.path", "dev.maximum.total_bytes_sec",
                     "dev.guaranteed.read_iops_sec", "dev.current.write_iops_sec"]
                    + [f"({s} {i + 1})".replace("(", "(dev.", 1) for i, s in enumerate(setters)]
                    + [f"dev.current.{k}" for k in limits])
    assert ev.run(text) == ["vda", "/dev/vda", 100, 7, 0, 1, 2, 3, 4, 5, 6] + [0] * 6
    assert ev.get("dev").tune == dict(zip(limits, range(1, 7)))


def test_an_entity_method_is_a_value_that_can_be_called():
    assert evaluator().run('(defvar f Host.Stat) (f "mem_free")')[1] == 5


# -- undeclared statistics ----------------------------------------------------
def test_an_undeclared_statistic_stops_the_evaluation_with_a_suggestion():
    ps = PolicySet({"p": '(Host.Control "ksm_run" 0)\n(if (< Host.mem_fre 10) 1 0)'})
    h = host()
    with pytest.raises(PolicyError) as info:
        ps.evaluate(h, [])
    error = info.value
    assert (error.policy, error.line, error.column) == ("p", 2, 8)
    assert "'Host.mem_fre': no statistic 'mem_fre' is declared for host" in str(error)
    assert "did you mean 'mem_free'?" in str(error)


def test_a_declared_statistic_missing_this_cycle_is_nil():
    assert evaluator().run("Host.swap_in (valid Host.swap_in)") == [None, False]


def test_dry_run_declares_the_statistics_given_and_those_of_the_built_in_collectors():
    policies = {"p": "(with Guests g (g.Control \"t\" (valid g.balloon_cur g.x)))"
                     "(Host.Control \"s\" Host.ksm_shareable)"}
    assert dry_run(policies, {}, [{"x": 1}]) == {"host": {"s": None},
                                                   "guests": [{"t": False}]}
    with pytest.raises(PolicyError) as info:
        dry_run({"p": "(with Guests g g.balloon_cru)"}, {}, [{"x": 1}])
    assert "did you mean 'balloon_cur'?" in str(info.value)


def test_dry_run_refuses_statistics_a_policy_cannot_hold():
    with pytest.raises(TypeError):
        dry_run({"p": "1"}, {"mem_free": {"nested": "dict"}}, [])


def test_binding_an_arbitrary_python_object_is_refused():
    class Anything:
        pass
    ev = Evaluator()
    for value in (Anything(), object(), {"a": 1}, (1, 2), Anything, [1, object()]):
        with pytest.raises(ValueError):
            ev.bind("x", value)
    ev.bind("ok", [1, "a", None, [2.5], host(), device()])


# -- mom-policy check / eval ---------------------------------------------------
def test_check_reports_a_refusal_as_file_line_col(tmp_path, capsys):
    p = tmp_path / "evil.policy"
    p.write_text("(defvar x 1)\n" + EXPLOIT)
    assert cli.main(["check", str(p)]) == 1
    assert capsys.readouterr().out == (f"{p}:2:12: 'Host.__init__.__globals__.get': '__init__' "
                                       "cannot be used in a policy (names starting with '_' "
                                       "are not accessible)\n")


def test_eval_reports_a_refusal_at_run_time_as_file_line_col(tmp_path, capsys):
    p = tmp_path / "p.policy"
    p.write_text('(defvar s "abc")\n  (s.upper)')
    assert cli.main(["eval", "--host", "{}", str(p)]) == 1
    assert capsys.readouterr().err == f"{p}:2:3: 's.upper': a string has no attributes\n"


def test_check_strict_warns_about_statistics_no_collector_declares(tmp_path, capsys):
    p = tmp_path / "typo.policy"
    p.write_text("(def f (guest) (guest.StatAvg \"swap_inn\"))\n"
                 "(with Guests guest (+ guest.balloon_cru (f guest)))\n"
                 "(Host.Control \"ksm_run\" Host.mem_fre)\n")
    assert cli.main(["check", str(p)]) == 0          # plugins may declare more
    assert capsys.readouterr().out == ""
    assert cli.main(["check", "--strict", str(p)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        (f"{p}:1:31: warning: (guest.StatAvg \"swap_inn\"): no built-in collector declares "
         "the guest statistic 'swap_inn' (did you mean 'swap_in'?)"),
        (f"{p}:2:23: warning: 'guest.balloon_cru': no built-in collector declares the guest "
         "statistic 'balloon_cru' (did you mean 'balloon_cur'?)"),
        (f"{p}:3:25: warning: 'Host.mem_fre': no built-in collector declares the host "
         "statistic 'mem_fre' (did you mean 'mem_free'?)"),
    ]


# -- fuzz: random paths and calls never leave the allowed kinds ----------------
ROOTS = ["Host", "guest", "dev", "lim", "s", "n", "L", "nothing", "m", "nil"]
SEGMENTS = st.one_of(
    st.sampled_from([
        "__class__", "__init__", "__globals__", "__dict__", "__self__", "__func__",
        "__builtins__", "_fields", "_history", "_set", "__getattr__", "mro", "get",
        "mem_free", "balloon_cur", "io_tune", "swap_in", "name", "path", "maximum", "current",
        "guaranteed", "total_bytes_sec", "write_iops_sec", "Stat", "StatAvg", "Prop",
        "Control", "GetControl", "SetVar", "GetVar", "setTotalBytesSec", "setReadIopsSec",
        "tune", "as_tunable", "changed", "from_dict", "fields", "controls", "properties",
        "upper", "append", "real", "im_func", "func_globals", "gi_frame", "f_back",
    ]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
)
# Real chains (often extended by one more segment) and random ones.
CHAINS = ["Host.mem_free", "Host.swap_in", "Host.Stat", "Host.Control", "guest.io_tune",
          "guest.balloon_cur", "guest.GetVar", "dev.maximum", "dev.maximum.total_bytes_sec",
          "dev.current", "dev.name", "dev.setTotalBytesSec", "lim.read_bytes_sec", "Host",
          "guest", "dev", "lim", "m", "s", "L", "n"]
paths = st.one_of(
    st.builds(lambda chain, segs: ".".join([chain, *segs]),
              st.sampled_from(CHAINS), st.lists(SEGMENTS, max_size=1)),
    st.builds(lambda root, segs: ".".join([root, *segs]),
              st.sampled_from(ROOTS), st.lists(SEGMENTS, min_size=1, max_size=4)),
)
ARGS = ['"mem_free"', '"x"', "1", "nil", "L", "s", "Host", "dev", '"balloon_cur"']
HEADS = ["+", "*", "==", "<", "max", "min", "not", "null", "valid", "abs", "debug", "m"]
expressions = st.one_of(
    paths,
    st.builds(lambda p, args: f"({p} {' '.join(args)})", paths,
              st.lists(st.sampled_from(ARGS + ["(m \"mem_free\")"]), max_size=2)),
    st.builds(lambda h, args: f"({h} {' '.join(args)})", st.sampled_from(HEADS),
              st.lists(st.one_of(st.sampled_from(ARGS), paths), min_size=1, max_size=2)),
    st.builds(lambda p, seg: f"(with {p} x x.{seg})", paths, SEGMENTS),
    st.builds(lambda p, seg: f"(let ((v {p})) v.{seg})", paths, SEGMENTS),
)
ENTITY_METHODS = {"Stat", "StatAvg", "Prop", "Control", "GetControl", "SetVar", "GetVar"}
DEVICE_METHODS = {"setTotalBytesSec", "setReadBytesSec", "setWriteBytesSec",
                  "setTotalIopsSec", "setReadIopsSec", "setWriteIopsSec"}


def allowed(value, depth=0):
    """The kinds the language documents (written independently of the sandbox)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return depth < 50 and all(allowed(v, depth + 1) for v in value)
    if type(value) in (Entity, IoTuneDevice, types.SimpleNamespace):
        return True
    if type(value) is types.MethodType:
        owner = type(value.__self__)
        name = value.__func__.__name__
        return (owner is Entity and name in ENTITY_METHODS
                and value.__func__ is getattr(Entity, name)) or \
            (owner is IoTuneDevice and name in DEVICE_METHODS
             and value.__func__ is getattr(IoTuneDevice, name))
    return False


def fuzz_evaluator():
    ev = evaluator()
    ev.bind("lim", device().maximum)
    ev.run("(defvar m Host.Stat)")
    return ev


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(expressions, min_size=1, max_size=4))
def test_fuzz_paths_and_calls_stay_inside_the_allowed_kinds(exprs):
    ev = fuzz_evaluator()
    for text in exprs:                  # one at a time: an error does not hide the rest
        try:
            values = ev.run(text)
        except PolicyError as error:
            assert error.line >= 1 and error.column >= 1
            continue
        assert all(allowed(v) for v in values), (text, values)
    for entity in (ev.get("Host"), ev.get("guest")):
        assert all(allowed(v) for v in entity.controls.values())
        assert all(allowed(v) for v in entity._variables.values())
