"""Evaluation rules of the policy language (docs/policy-language.md, "Evaluation")."""
import logging

import pytest

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy import Evaluator, PolicyError


def run(text, **bindings):
    ev = Evaluator()
    for name, value in bindings.items():
        ev.bind(name, value)
    return ev.run(text)


def fails(text, *fragments, **bindings):
    with pytest.raises(PolicyError) as info:
        run(text, **bindings)
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


def recorder():
    """A function to bind, and the list of the values it was called with, in order."""
    calls = []

    def hit(value):
        calls.append(value)
        return value
    return hit, calls


# -- Python value semantics -------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ('(+ "ab" "cd")', "abcd"),
    ('(* 3 "Hey ")', "Hey Hey Hey "),
    ("(/ 11 2)", 5.5),
    ("(/ 10 2)", 5.0),
    ("(- 10 2.5)", 7.5),
    ("(* 4 5)", 20),
    ("(< 1 2)", True), ("(> 1 2)", False), ("(<= 2 2)", True), ("(>= 1 2)", False),
    ("(== 1 1.0)", True), ("(!= 1 2)", True), ('(== "a" "a")', True), ("(== nil nil)", True),
    ("(== nil 0)", False),
    ("(<< 1 4)", 16), ("(>> 256 2)", 64),
    ('(< "abc" "abd")', True),
])
def test_operators_are_pythons(text, value):
    (result,) = run(text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("falsy", ["0", '""', "nil", "0.0", "L"])
def test_python_truthiness(falsy):
    assert run(f"(if {falsy} 1 2)", L=[]) == [2]


@pytest.mark.parametrize("truthy", ["1", '"x"', "-1", "0.5", "L"])
def test_python_truthiness_true(truthy):
    assert run(f"(if {truthy} 1 2)", L=[0]) == [1]


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "<", ">", "<=", ">=", "==", "!=", "<<", ">>"])
@pytest.mark.parametrize("args", ["", "1", "1 2 3"])
def test_binary_operators_take_exactly_two(op, args):
    count = len(args.split())
    fails(f"({op} {args})", f"'{op}' takes 2 arguments, got {count}", "at line 1")


# -- and / or ---------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ('(and 1 "")', ""), ('(or "" 17)', 17), ('(or "" "")', ""),
    ("(and 1 2 3)", 3), ("(and 1 0 3)", 0), ("(or 0 nil 5)", 5), ("(or 0 nil)", None),
    ("(and 7)", 7), ("(or 0)", 0), ("(and nil 1)", None),
])
def test_and_or_return_the_deciding_operand(text, value):
    (result,) = run(text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("word", ["and", "or"])
def test_and_or_evaluate_every_operand_no_short_circuit(word):
    hit, calls = recorder()
    first = 0 if word == "and" else 1          # would short-circuit in Python
    run(f"({word} (hit {first}) (hit 2) (hit 3))", hit=hit)
    assert calls == [first, 2, 3]


@pytest.mark.parametrize("word", ["and", "or"])
def test_and_or_need_at_least_one_operand(word):
    fails(f"({word})", f"'{word}' takes 1 or more arguments, got 0")


# -- not, min, max, null, valid, abs, debug ---------------------------------
def test_not():
    assert run("(not 0) (not 1) (not nil) (not \"\")") == [True, False, True, True]


def test_not_arity_message():
    fails("(defvar x 1)\n(not)", "'not' takes 1 argument, got 0 at line 2")
    fails("(not 1 2)", "'not' takes 1 argument, got 2")


def test_min_max():
    assert run("(min 3 1 2) (max 3 1 2) (min 4 9) (max 4 9) (max 5) (min -1)") == \
        [1, 3, 4, 9, 5, -1]
    assert run('(max "a" "b")') == ["b"]


@pytest.mark.parametrize("fn", ["min", "max"])
def test_min_max_need_one_argument(fn):
    fails(f"({fn})", f"'{fn}' takes 1 or more arguments, got 0")


def test_null_true_when_every_argument_is_nil_or_empty():
    assert run('(null) (null nil) (null "") (null nil "" E) (null 0) (null nil 1) (null "x")',
               E=[]) == [True, True, True, True, False, False, False]


def test_valid_true_when_no_argument_is_nil():
    assert run('(valid) (valid 1) (valid 0 "" E) (valid 1 nil) (valid nil)', E=[]) == \
        [True, True, True, False, False]


def test_abs():
    assert run("(abs -4) (abs 2.5) (abs 0)") == [4, 2.5, 0]
    fails("(abs)", "'abs' takes 1 argument, got 0")
    fails("(abs 1 2)", "'abs' takes 1 argument, got 2")


def test_debug_logs_and_yields_last(caplog):
    with caplog.at_level(logging.DEBUG, logger="mom.policy"):
        assert run('(debug "free" 42)') == [42]
    assert any("free" in r.getMessage() and "42" in r.getMessage() for r in caplog.records)
    fails("(debug)", "'debug' takes 1 or more arguments, got 0")


# -- defvar -----------------------------------------------------------------
def test_defvar_keeps_the_first_value():
    assert run("(defvar x 1) (defvar x 0) x") == [1, 1, 1]


def test_defvar_in_a_new_scope_shadows_and_the_outer_value_returns():
    assert run("(defvar x 1) (let () (defvar x 2) x) x") == [1, 2, 1]


def test_defvar_in_a_function_scope_is_local_to_the_call():
    assert run("(def f () { (defvar y 5) y }) (f) (valid 1)") == ["f", 5, True]
    fails("(def f () { (defvar y 5) y }) (f) y", "undefined symbol 'y'")


def test_defvar_needs_a_plain_name():
    fails("(defvar Host.a 1)", "'defvar' needs a plain name",
          Host=Entity({"name": "host"}, [{"a": 0}]))


# -- set / setq -------------------------------------------------------------
@pytest.mark.parametrize("word", ["set", "setq"])
def test_set_assigns_and_yields_the_value(word):
    assert run(f"(defvar x 1) ({word} x 7) x") == [1, 7, 7]


def test_set_assigns_in_the_nearest_scope_that_has_the_name():
    assert run("(defvar x 1) (let ((x 2)) (set x 3) x) x") == [1, 3, 1]
    assert run("(defvar x 1) (let ((y 2)) (set x 3)) x") == [1, 3, 3]


def test_set_of_an_undefined_name_is_an_error():
    fails("(set nope 1)", "'set' of undefined variable 'nope'", "line 1")
    fails("(setq nope 1)", "'setq' of undefined variable 'nope'")


def test_set_of_a_dotted_name_is_an_error():
    fails("(set Host.a 1)", "'set' cannot assign to attribute 'Host.a'",
          Host=Entity({"name": "host"}, [{"a": 0}]))


# -- def / defun and calls --------------------------------------------------
@pytest.mark.parametrize("word", ["def", "defun"])
def test_def_yields_the_name(word):
    assert run(f"({word} double (x) (* 2 x)) (double 21)") == ["double", 42]


def test_redefinition_replaces():
    assert run("(def f () 1) (f) (def f () 2) (f)") == ["f", 1, "f", 2]


def test_function_defined_inside_a_function_is_global():
    assert run("(def outer () (def inner () 42)) (outer) (inner)") == ["outer", "inner", 42]


def test_function_body_may_hold_several_expressions():
    assert run("(defvar n 0) (def f () (set n 5) (+ n 1)) (f) n") == [0, "f", 6, 5]


def test_user_function_arity_is_exact():
    fails("(def f (a b) a) (f 1)", "'f' takes 2 arguments, got 1", "line 1")
    fails("(def f (a) a)\n(f 1 2)", "'f' takes 1 argument, got 2 at line 2")
    fails("(def f () 1) (f 1 2 3 4 5)", "'f' takes 0 arguments, got 5")


def test_undefined_function():
    fails("(nosuch 1)", "undefined function 'nosuch'")


def test_dynamic_scoping_function_sees_callers_variables():
    assert run("(def show () x) (def caller (x) (show)) (caller 9)") == ["show", "caller", 9]


def test_dynamic_scoping_misspelled_parameter_still_reads_the_loop_variable():
    g1 = Entity({"name": "a"}, [{"balloon_cur": 100}])
    g2 = Entity({"name": "b"}, [{"balloon_cur": 200}])
    text = """
    (def current (gueest) guest.balloon_cur)   # parameter misspelt
    (with Guests guest (current guest))
    """
    assert run(text, Guests=[g1, g2]) == ["current", [100, 200]]


def test_parameters_disappear_after_the_call():
    fails("(def f (p) p) (f 1) p", "undefined symbol 'p'")
    assert run("(defvar p 0) (def f (p) p) (f 1) p") == [0, "f", 1, 0]


def test_callee_assignment_reaches_callers_binding():
    assert run("(def bump () (set x (+ x 1))) (def f (x) { (bump) x }) (f 1)") == \
        ["bump", "f", 2]


def test_recursion():
    text = "(def fact (n) (if (<= n 1) 1 (* n (fact (- n 1))))) (fact 10)"
    assert run(text) == ["fact", 3628800]


def test_repeated_parameter_name_takes_the_last_argument():
    assert run("(def f (a a) a) (f 1 2)") == ["f", 2]


def test_repeated_parameter_name_gets_its_outer_value_back():
    assert run("(defvar a 0) (def f (a a) a) (f 1 2) a") == [0, "f", 2, 0]


def test_function_with_many_parameters():
    assert run("(def f (a b c d e) (+ a (+ b (+ c (+ d e))))) (f 1 2 3 4 5)") == ["f", 15]


@pytest.mark.parametrize("params", ["a", "a b", "a b c", "a b c d"])
def test_parameters_get_their_outer_values_back_whatever_their_number(params):
    names = params.split()
    outer = " ".join(f"(defvar {n} {i})" for i, n in enumerate(names))
    text = f"{outer} (def f ({params}) {names[-1]}) (f {' '.join(['7'] * len(names))}) {params}"
    assert run(text)[len(names):] == ["f", 7, *range(len(names))]
    # ... and after an error in the body, as after a return
    ev = Evaluator()
    ev.run(f"{outer} (def f ({params}) (+ {names[-1]} 'x'))")
    with pytest.raises(PolicyError):
        ev.run(f"(f {' '.join(['7'] * len(names))})")
    assert ev.variables == {n: i for i, n in enumerate(names)}


# -- let --------------------------------------------------------------------
def test_let_binds_in_order_and_yields_the_last_expression():
    assert run("(let ((a 1) (b (+ a 1))) a b)") == [2]


def test_let_scope_ends_with_the_let():
    fails("(let ((a 1)) a) a", "undefined symbol 'a'")
    assert run("(defvar a 10) (let ((a 1)) a) a") == [10, 1, 10]


def test_let_with_no_bindings_is_a_scoped_block():
    assert run("(let () (defvar t 3) t)") == [3]
    fails("(let () (defvar t 3) t) t", "undefined symbol 't'")


def test_let_with_empty_body_yields_nil():
    assert run("(let ((a 1)))") == [None]


def test_let_binding_shape_is_checked():
    fails("(let (a) 1)", "a 'let' binding must look like (name value)")
    fails("(let x 1)", "'let' needs a binding list")


def test_let_in_a_loop_restores_after_each_iteration():
    assert run("(defvar v 0) (with L i (let ((v (* i 10))) v)) v", L=[1, 2, 3]) == \
        [0, [10, 20, 30], 0]


# -- if ---------------------------------------------------------------------
def test_if_takes_exactly_three_parts():
    fails("(if 1 2)", "'if' takes 3 arguments", "got 2")
    fails("(if 1 2 3 4)", "'if' takes 3 arguments", "got 4")


def test_if_runs_only_the_chosen_branch():
    hit, calls = recorder()
    assert run("(if 1 (hit 'then') (hit 'else'))", hit=hit) == ["then"]
    assert run("(if 0 (hit 'then2') (hit 'else2'))", hit=hit) == ["else2"]
    assert calls == ["then", "else2"]


def test_if_with_not_condition():
    assert run("(if (not 0) 1 2) (if (not 1) 1 2)") == [1, 2]


def test_if_opens_no_scope():
    assert run("(if 1 (defvar made 4) 0) made") == [4, 4]


# -- with -------------------------------------------------------------------
def test_with_yields_the_list_of_body_results():
    assert run("(with L x (* x x))", L=[1, 2, 3]) == [[1, 4, 9]]
    assert run("(with L x x)", L=[]) == [[]]


def test_with_over_a_dotted_name():
    guest = Entity({"name": "vm"}, [{"io_tune": ["vda", "vdb"]}])
    assert run('(with guest.io_tune dev (+ dev "!"))', guest=guest) == [["vda!", "vdb!"]]


def test_with_item_scope_is_new_for_each_element():
    assert run("(with L x { (defvar seen x) seen })", L=[1, 2]) == [[1, 2]]
    fails("(with L x x) x", "undefined symbol 'x'", L=[1])


def test_with_forgets_what_each_element_defined():
    fails("(with L x (defvar seen x)) seen", "undefined symbol 'seen'", L=[1, 2])
    assert run("(defvar seen 0) (with L x (defvar seen x)) seen", L=[1, 2]) == [0, [1, 2], 0]


def test_with_restores_an_outer_variable_of_the_same_name():
    assert run("(defvar x 'outer') (with L x x) x", L=[1, 2]) == ["outer", [1, 2], "outer"]


def test_with_over_nil_is_an_error():
    fails("(defvar L nil) (with L x x)", "'with' needs a list, but L is nil")


def test_with_needs_a_plain_item_name():
    fails("(with L 5 5)", "'with' needs a plain item name", L=[1])


# -- attributes and methods --------------------------------------------------
# (what a policy may reach is tested in test_policy_sandbox.py)
def test_an_attribute_that_is_not_declared_is_an_error():
    e = Entity({"name": "vm"}, [{"x": 1}])
    fails("o.nothing", "'o.nothing': no statistic 'nothing' is declared for vm", o=e)


def test_method_calls():
    e = Entity({"name": "vm"}, [{}])
    assert run('(e.Control "a" 5) (e.Control "b" (+ 1 1)) (e.GetControl "a")', e=e) == [5, 2, 5]
    assert e.controls == {"a": 5, "b": 2}


def test_nested_attributes_and_methods():
    dev = IoTuneDevice("vda", "/dev/vda", maximum={"total_bytes_sec": 100})
    assert run("dev.maximum.total_bytes_sec "
               "(dev.setTotalBytesSec (* 2 dev.maximum.total_bytes_sec))", dev=dev) == [100, 200]
    assert dev.tune["total_bytes_sec"] == 200


def test_calling_something_that_is_not_a_method_is_an_error():
    e = Entity({"name": "vm"}, [{"x": 1}], fields={"x", "y"})
    fails("(o.y 1)", "'o.y' is nil; it cannot be called", o=e)
    fails("(o.x 1)", "'o.x' is a number, not a function; it cannot be called", o=e)
    fails("(o.nothing 1)", "'o.nothing': no statistic 'nothing' is declared for vm", o=e)


# -- name lookup for calls ---------------------------------------------------
def test_a_callable_bound_in_scope_comes_before_built_ins():
    assert run("(abs -3)", abs=lambda x: "mine") == ["mine"]


def test_a_callable_bound_in_scope_comes_before_user_functions():
    assert run("(def f () 'user') (f)", f=lambda: "bound") == ["f", "bound"]


def test_a_non_callable_binding_does_not_hide_the_function():
    assert run("(defvar max 3) (max 1 2)") == [3, 2]
    assert run("(defvar f 3) (def f () 'user') (f)") == [3, "f", "user"]


def test_a_callable_defined_by_the_policy_hides_a_built_in():
    e = Entity({"name": "h"}, [{"x": 7}])
    assert run('(defvar min Host.Stat) (min "x")', Host=e) == [e.Stat, 7]


def test_built_ins_come_before_user_functions():
    assert run("(def abs (x) 'user') (abs -2)") == ["abs", 2]


# -- programs ---------------------------------------------------------------
def test_result_is_the_list_of_top_level_values():
    assert run("1 'two' (+ 1 2) nil") == [1, "two", 3, None]


def test_empty_call_is_nil():
    assert run("()") == [None]


def test_evaluator_keeps_its_scope_between_runs():
    ev = Evaluator()
    ev.run("(defvar x 2) (def sq (v) (* v v))")
    assert ev.run("(sq x)") == [4]
    assert ev.get("x") == 2 and ev.functions == ["sq"]


def test_evaluator_scope_is_intact_after_an_error():
    ev = Evaluator()
    ev.run("(defvar x 1) (def boom (x) (+ x 'a'))")
    with pytest.raises(PolicyError):
        ev.run("(let ((x 5)) (boom x))")
    assert ev.run("x") == [1]
    assert ev.variables == {"x": 1}


def test_bind_rejects_names_that_are_not_symbols():
    with pytest.raises(ValueError):
        Evaluator().bind(" frame", 1)
    with pytest.raises(ValueError):
        Evaluator().bind("nil", 1)
