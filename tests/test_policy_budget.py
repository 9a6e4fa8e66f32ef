"""Budgets and limits: a runaway or oversized policy is stopped with a PolicyError.

Steps are counted at each top-level expression, each user-function call
and each round of a ``with`` loop (docs/policy-language.md, "Sandbox and
limits"); values, policy texts and compile work have size limits.
"""
import math
import time
import tracemalloc

import pytest

from mom.entity import Entity
from mom.policy import Evaluator, PolicyError, PolicySet, compile_policy, dry_run
from mom.policy.budget import (DEFAULT_MAX_SECONDS, DEFAULT_MAX_STEPS, MAX_ALLOCATED,
                               MAX_INT_BITS, MAX_ITEMS, MAX_POLICY_BYTES)

RUNAWAY = '(with (* "a" 100000) x { (with (* "a" 100000) y 0) 0 })'
# A list whose two elements are one list, n levels deep: 2**n leaves in n lists.
SHARED = ("(def build (n) (if (== n 0) 0 { (defvar sub (build (- n 1))) "
          "(with \"ab\" x sub) }))\n")


def host():
    return Entity({"name": "host"}, [{"mem_free": 1}])


def run(text, **budget):
    return Evaluator("p", **budget).run(text)


def fails(text, *fragments, **budget):
    with pytest.raises(PolicyError) as info:
        run(text, **budget)
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


# -- steps --------------------------------------------------------------------
def test_steps_are_top_level_expressions_calls_and_loop_rounds():
    # 2 top-level expressions + 11 calls of f; then 1 + 5 rounds.
    recursion = "(def f (n) (if (> n 0) (f (- n 1)) 0)) (f 10)"
    assert run(recursion, max_steps=13) == ["f", 0]
    fails(recursion, "ran out of steps: it took more than 12 steps", max_steps=12)
    loop = '(with "abcde" x x)'
    assert run(loop, max_steps=6) == [list("abcde")]
    fails(loop, "ran out of steps", max_steps=5)


def test_running_out_of_steps_names_the_policy_and_line():
    ps = PolicySet({"00-ok": "1", "10-loop": "\n\n  (with (* 'a' 50) x x)"}, max_steps=20)
    with pytest.raises(PolicyError) as info:
        ps.evaluate(host(), [])
    error = info.value
    assert (error.policy, error.line, error.column) == ("10-loop", 3, 3)
    assert str(error).startswith("10-loop: evaluation ran out of steps")
    assert "policy-max-steps" in str(error)


def test_the_budget_is_per_evaluation():
    ps = PolicySet({"p": '(with (* "a" 30) x x)'}, max_steps=40)
    for _ in range(3):                   # never accumulates across evaluations
        ps.evaluate(host(), [])
    ev = Evaluator(max_steps=40)
    for _ in range(3):
        ev.run('(with (* "a" 30) x x)')


def test_exponential_recursion_is_stopped():
    text = "(def f (n) (if (> n 0) { (f (- n 1)) (f (- n 1)) } 0)) (f 60)"
    fails(text, "ran out of steps", max_steps=100_000)


def test_the_classic_runaway_stops_on_the_default_budget():
    with pytest.raises(PolicyError) as info:
        PolicySet({"p": RUNAWAY}).evaluate(host(), [])
    assert "ran out of" in str(info.value)


def test_the_classic_runaway_stops_within_the_wall_clock_budget():
    start = time.monotonic()
    error = fails(RUNAWAY, "ran out of time: it took more than 0.2 s",
                  max_steps=10**12, max_seconds=0.2)
    assert time.monotonic() - start < 5      # the clock is read every 1000 steps
    assert "policy-max-seconds" in str(error) and error.line == 1


def test_comparing_lists_that_share_parts_is_on_the_budget():
    # Python's own == would look at 2**60 pairs of leaves.
    fails(SHARED + "(== (build 60) (build 60))", "ran out of steps", max_steps=100_000)
    fails(SHARED + "(max (build 60) (build 60))", "ran out of steps", max_steps=100_000)


def test_list_comparisons_are_pythons():
    text = """(defvar a (with "ab" x 1)) (defvar b (with "abc" x 1)) (defvar c (with "ab" x 2))
              (== a a) (== a b) (!= a b) (< a b) (< b a) (< a c) (>= c a) (== a (+ a ()))
              (max a c b) (min c b a)"""
    values = run(text.replace("()", "(with \"\" x x)"))[3:]
    assert values == [True, False, True, True, False, True, True, True, [2, 2], [1, 1]]
    fails('(defvar a (with "ab" x 1)) (< a (with "ab" x "s"))', "failed")


def test_messages_about_huge_shared_lists_stay_short():
    error = fails(SHARED + "(+ (build 60) 1)", "(+ [[[[", max_steps=100_000)
    assert len(str(error)) < 200


# -- sizes --------------------------------------------------------------------
def test_repeating_a_string_past_the_limit_fails_before_allocating():
    tracemalloc.start()
    try:
        fails('(* "a" 1000000000)', f"would hold 1000000000 items; a value may hold at most "
                                    f"{MAX_ITEMS}")
        fails('(* 1000000000 "a")', "would hold 1000000000 items")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


def test_values_up_to_the_limit_are_fine_and_one_more_is_refused():
    assert len(run(f'(* "a" {MAX_ITEMS})')[0]) == MAX_ITEMS
    fails(f'(* "a" {MAX_ITEMS + 1})', "a value may hold at most")
    fails(f'(defvar s (* "a" {MAX_ITEMS})) (+ s "b")', "(+ ...) would hold")
    fails(f'(defvar L (with "ab" x x)) (* L {MAX_ITEMS // 2 + 1})', "(* ...) would hold")
    fails(f'(defvar L (with (* "a" {MAX_ITEMS}) x 0)) (+ L (with "a" x x))', "(+ ...) would")


def test_all_values_built_in_one_evaluation_are_limited_together():
    count = MAX_ALLOCATED // MAX_ITEMS
    build = f'(* "a" {MAX_ITEMS}) ' * count
    assert len(run(build)) == count
    fails(build + '(* "a" 2)', f"may hold at most {MAX_ALLOCATED} items together")


def test_integers_built_by_multiplying_and_shifting_are_limited():
    assert run(f"(<< 1 {MAX_INT_BITS - 1})")[0] == 1 << (MAX_INT_BITS - 1)
    fails(f"(<< 1 {MAX_INT_BITS})", f"more than {MAX_INT_BITS} bits")
    fails("(defvar x (<< 1 40000)) (* x x)", "would build an integer")
    assert run("(* 3 4) (* 2.5 2) (* -1 (< 0 1)) (* 2 'ab')") == [12, 5.0, -1, "abab"]


def test_deeply_nested_values_give_a_policy_error():
    text = ('(defvar L 0) (with (* "a" 50000) x (set L (with "a" y L))) '
            '(== L (with "a" y L))')
    fails(text, "too much recursion")


# -- policy text --------------------------------------------------------------
def test_a_text_of_exactly_one_mib_is_read_and_one_byte_more_is_refused():
    text = "#" * (MAX_POLICY_BYTES - 2) + "\n1"
    assert compile_policy(text).run is not None
    with pytest.raises(PolicyError) as info:
        compile_policy(text + " ", "big")
    assert info.value.policy == "big"
    assert f"more than {MAX_POLICY_BYTES} bytes (1 MiB" in str(info.value)


def test_the_text_limit_counts_utf8_bytes():
    compile_policy("# " + "é" * (MAX_POLICY_BYTES // 2 - 2))
    with pytest.raises(PolicyError):
        compile_policy("# " + "é" * (MAX_POLICY_BYTES // 2))


def test_an_oversized_policy_is_refused_by_set_policy_and_the_set_stays():
    ps = PolicySet({"a": "1"})
    with pytest.raises(PolicyError):
        ps.set_policy("b", "1 " * 5_000_000)
    assert ps.get_policies() == {"a": "1"}


def test_an_oversized_policy_file_is_refused(tmp_path):
    path = tmp_path / "big.policy"
    path.write_text("1 " * (MAX_POLICY_BYTES // 2 + 1))
    ps = PolicySet({"a": "1"})
    with pytest.raises(PolicyError) as info:
        ps.load_file(str(path), "big")
    assert info.value.policy == "big" and "too large" in str(info.value)
    assert ps.get_policies() == {"a": "1"}
    (tmp_path / "ok.policy").write_text("2")
    errors = ps.load_directory(str(tmp_path))
    assert [e.policy for e in errors] == ["big"] and ps.names() == ["ok"]


def test_half_a_million_expressions_compile_and_run():
    program = compile_policy("1 " * 500_000, "many")
    env_run = Evaluator(max_steps=600_000).execute(program)
    assert len(env_run) == 500_000


@pytest.mark.parametrize("text", ["(" * 100_000, "{" * 5000 + "}" * 5000,
                                  "[" * 101 + "]" * 101])
def test_deep_nesting_is_a_policy_error(text):
    with pytest.raises(PolicyError) as info:
        compile_policy(text)
    assert "nested more than" in str(info.value)


def test_a_long_dotted_name_compiles_quickly_and_fails_cleanly():
    text = "Host" + ".mem_free" * 100_000          # 900 KB
    ev = Evaluator()
    ev.bind("Host", host())
    with pytest.raises(PolicyError) as info:
        ev.run(text)
    assert "'Host.mem_free.mem_free': a number has no attributes" in str(info.value)


# -- configuration -------------------------------------------------------------
def test_defaults_are_large():
    assert DEFAULT_MAX_STEPS >= 1_000_000 and DEFAULT_MAX_SECONDS >= 1


@pytest.mark.parametrize("kwargs", [{"max_steps": 0}, {"max_steps": 1.5},
                                    {"max_steps": True}, {"max_seconds": 0},
                                    {"max_seconds": math.inf}, {"max_seconds": math.nan},
                                    {"max_seconds": "5"}])
def test_bad_budgets_are_refused(kwargs):
    with pytest.raises(ValueError):
        PolicySet(**kwargs)
    with pytest.raises(ValueError):
        Evaluator(**kwargs)


def test_dry_run_takes_the_budget():
    with pytest.raises(PolicyError):
        dry_run({"p": '(with (* "a" 100) x x)'}, {}, [], max_steps=50)
    assert dry_run({"p": '(with (* "a" 100) x x)'}, {}, [], max_steps=200)["guests"] == []


# -- what a failed evaluation leaves behind -------------------------------------
def test_disk_limits_chosen_before_a_failure_are_discarded():
    from mom.iotune import IoTuneDevice
    dev = IoTuneDevice("vda", "/dev/vda", maximum={"total_bytes_sec": 9})
    guest = Entity({"name": "vm"}, [{"io_tune": [dev]}])
    ps = PolicySet({"a": "(with Guests g (with g.io_tune d (d.setTotalBytesSec 9)))",
                    "b": '(with (* "a" 100) x x)'}, max_steps=50)
    with pytest.raises(PolicyError):
        ps.evaluate(host(), (guest,))
    assert not dev.changed()
    ps.set_policy("b", None)
    ps.evaluate(host(), (guest,))             # any sequence of guests will do
    assert dev.changed() and dev.tune["total_bytes_sec"] == 9


def test_the_budget_counts_down_in_chunks_and_knows_the_steps_taken():
    from mom.policy.budget import CLOCK_EVERY, Budget
    budget = Budget(max_steps=CLOCK_EVERY + 5, max_seconds=60)
    for taken in range(1, CLOCK_EVERY + 6):
        budget.countdown -= 1
        if budget.countdown < 0:
            budget.checkpoint(1, 1)
        assert budget.steps == taken
    budget.countdown -= 1
    with pytest.raises(PolicyError, match="more than 1005 steps"):
        budget.checkpoint(7, 3)
