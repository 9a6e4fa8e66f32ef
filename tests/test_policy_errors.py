"""Errors are for people: policy name, line, column and what was wrong;
a Python error inside evaluation is never let out bare."""
import pytest

from mom.entity import Entity
from mom.policy import Evaluator, PolicyError, compile_policy


def error_of(text, name=None, **bindings):
    ev = Evaluator(name)
    for key, value in bindings.items():
        ev.bind(key, value)
    with pytest.raises(PolicyError) as info:
        ev.run(text)
    return info.value


def test_undefined_symbol_names_it_and_its_place_with_a_suggestion():
    text = "(defvar balloonEnabled 1)\n(if 1\n    (+ 1 ballonEnabled) 0)"
    err = error_of(text, name="02-balloon")
    assert "undefined symbol 'ballonEnabled' at line 3 col 10" in str(err)
    assert "did you mean 'balloonEnabled'?" in str(err)
    assert (err.line, err.column, err.policy) == (3, 10, "02-balloon")
    assert str(err).startswith("02-balloon: ")


def test_arity_error_names_the_function_and_line():
    err = error_of("\n(not)")
    assert "'not' takes 1 argument, got 0 at line 2" in str(err)


def test_policy_error_carries_fields_and_formats_them():
    err = PolicyError("bad thing", 4, 7, "p1", hint="try this")
    assert str(err) == "p1: bad thing at line 4 col 7 (try this)"
    assert (err.reason, err.line, err.column, err.policy) == ("bad thing", 4, 7, "p1")
    assert isinstance(err, Exception)


def test_policy_error_survives_pickling():
    import pickle
    err = pickle.loads(pickle.dumps(PolicyError("x", 1, 2, "p")))
    assert (err.reason, err.line, err.column, err.policy) == ("x", 1, 2, "p")


@pytest.mark.parametrize("text, fragment, place", [
    ('(+ 1 "a")', '(+ 1 "a") failed: unsupported operand', (1, 1)),
    ("(defvar x nil)\n  (< x 5)", "(< nil 5) failed: '<' not supported", (2, 3)),
    ("(/ 1 0)", "(/ 1 0) failed: division by zero", (1, 1)),
    ("(abs 'x')", "(abs \"x\") failed: bad operand type", (1, 1)),
    ('(max 1 "a")', "(max 1 \"a\") failed", (1, 1)),
    ("(<< 1 -1)", "negative shift count", (1, 1)),
])
def test_python_errors_become_policy_errors_with_their_place(text, fragment, place):
    err = error_of(text)
    assert fragment in str(err)
    assert (err.line, err.column) == place
    assert not isinstance(err, TypeError)


def test_error_inside_a_function_points_at_the_failing_expression():
    text = "(def f (x)\n  (+ x 'a'))\n(f 1)"
    err = error_of(text)
    assert (err.line, err.column) == (2, 3)


def test_method_errors_become_policy_errors():
    from mom.iotune import IoTuneDevice
    err = error_of("(dev.setTotalBytesSec 'lots')", dev=IoTuneDevice("vda", "/dev/vda"))
    assert "(dev.setTotalBytesSec \"lots\") failed: invalid literal" in str(err)


def test_undeclared_field_in_stat_is_a_policy_error_with_line():
    host = Entity({"name": "host"}, [{"mem_free": 1}])
    err = error_of('\n(Host.StatAvg "mem_fre")', Host=host)
    assert "no collector provides the field 'mem_fre'" in str(err)
    assert err.line == 2


def test_deep_recursion_is_a_policy_error():
    err = error_of("(def loop (n) (loop n)) (loop 1)")
    assert "too much recursion in 'loop'" in str(err)
    assert err.line == 1


def test_syntax_error_names_the_policy():
    with pytest.raises(PolicyError) as info:
        compile_policy("(a\n(b", "03-ksm")
    assert info.value.policy == "03-ksm"
    assert str(info.value).startswith("03-ksm: unclosed '(' opened at line 2 col 1")


def test_runtime_shape_mistakes_load_but_fail_when_run_and_are_warnings():
    # The original engine only noticed these when the code ran; so do we.
    program = compile_policy("(def unused () (if 1 2))\n(not 1 2)", "p")
    assert [(w.line, w.reason) for w in program.warnings] == [
        (1, "'if' takes 3 arguments (condition then else), got 2"),
        (2, "'not' takes 1 argument, got 2"),
    ]
    assert all(w.policy == "p" for w in program.warnings)


def test_calling_a_non_name_is_an_error_when_run():
    err = error_of("(1 2)")
    assert "cannot call 1" in str(err)
    err = error_of("((f) 2)")
    assert "cannot call (f)" in str(err)


def test_undefined_symbol_in_each_operand_position_is_reported_at_that_symbol():
    err = error_of("(+ 1\n   nope)")
    assert (err.line, err.column) == (2, 4)
    err = error_of("(defvar a 0) (if a 1\n missing)")
    assert (err.line, err.column) == (2, 2)


def test_undefined_object_of_a_method_call():
    err = error_of("(ghost.Control 'x' 1)")
    assert "undefined symbol 'ghost' at line 1 col 2" in str(err)
