"""PolicySet: named texts, evaluated together in sorted-name order."""
import logging
import threading

import pytest

from mom.entity import Entity
from mom.policy import DEFAULT_POLICY_NAME, PolicyError, PolicySet


def host():
    return Entity({"name": "host"}, [{"mem_free": 10}])


def test_default_policy_name():
    assert DEFAULT_POLICY_NAME == "50_main_"


def test_policies_run_as_one_program_in_sorted_name_order():
    ps = PolicySet({"20-b": "(set order (+ order 'b'))", "10-a": "(defvar order 'a')",
                    "30-c": "order"})
    assert ps.evaluate(host(), []) == ["a", "ab", "ab"]
    assert ps.names() == ["10-a", "20-b", "30-c"]


def test_each_evaluation_starts_from_a_fresh_global_scope():
    ps = PolicySet({"p": "(defvar n 0) (set n (+ n 1)) (def f () 1)"})
    assert ps.evaluate(host(), []) == [0, 1, "f"]
    assert ps.evaluate(host(), []) == [0, 1, "f"]


def test_host_and_guests_are_bound():
    g = Entity({"name": "vm"}, [{"x": 3}])
    ps = PolicySet({"p": "Host.mem_free (with Guests g g.x)"})
    assert ps.evaluate(host(), [g]) == [10, [3]]


def test_set_replace_and_delete():
    ps = PolicySet()
    ps.set_policy("a", "1")
    ps.set_policy("b", "2")
    assert ps.get_policies() == {"a": "1", "b": "2"}
    ps.set_policy("a", "3")
    assert ps.get_policy("a") == "3"
    ps.set_policy("a", None)
    assert ps.get_policy("a") is None and ps.get_policies() == {"b": "2"}
    ps.set_policy("missing", None)   # deleting what is not there is fine
    assert ps.evaluate(host(), []) == [2]


def test_text_that_does_not_parse_is_refused_and_the_set_stays():
    ps = PolicySet({"a": "(defvar x 1)"})
    before = ps.version
    with pytest.raises(PolicyError) as info:
        ps.set_policy("b", "(defvar y")
    assert info.value.policy == "b" and info.value.line == 1
    assert ps.get_policies() == {"a": "(defvar x 1)"}
    assert ps.version == before


def test_replace_is_all_or_nothing():
    ps = PolicySet({"a": "1"})
    with pytest.raises(PolicyError) as info:
        ps.replace({"x": "2", "y": "(oops"})
    assert info.value.policy == "y"
    assert ps.get_policies() == {"a": "1"}
    ps.replace({"x": "2", "y": "3"})
    assert ps.get_policies() == {"x": "2", "y": "3"}


def test_get_text_joins_in_sorted_name_order():
    ps = PolicySet({"b": "(+ 1 1)", "a": "(defvar z 0)"})
    assert ps.get_text() == "(defvar z 0)\n(+ 1 1)"


def test_version_counts_changes():
    ps = PolicySet()
    v0 = ps.version
    ps.set_policy("a", "1")
    ps.set_policy("a", "2")
    ps.set_policy("a", None)
    assert ps.version == v0 + 3
    ps.set_policy("a", None)       # no change
    assert ps.version == v0 + 3


def test_runtime_error_names_the_policy():
    ps = PolicySet({"01-ok": "(defvar a 1)", "02-bad": "\n(+ a 'x')"})
    with pytest.raises(PolicyError) as info:
        ps.evaluate(host(), [])
    assert (info.value.policy, info.value.line, info.value.column) == ("02-bad", 2, 1)
    assert str(info.value).startswith("02-bad: ")


def test_the_cycle_after_a_runtime_error_runs_again():
    # Fails the first time only: the variable it sets outlives the cycle.
    ps = PolicySet({"p": '(with Guests g (if (g.GetVar "seen") "ok" '
                         '{ (g.SetVar "seen" 1) (+ nil 1) }))'})
    flaky = Entity({"name": "vm"}, [{}])
    with pytest.raises(PolicyError) as info:
        ps.evaluate(host(), [flaky])
    assert "(+ nil 1) failed" in str(info.value)
    assert ps.evaluate(host(), [flaky]) == [["ok"]]


def test_load_directory_skips_and_returns_bad_files(tmp_path, caplog):
    (tmp_path / "00-defs.policy").write_text("(defvar a 1)")
    (tmp_path / "10-use.policy").write_text("(+ a 1)")
    (tmp_path / "20-bad.policy").write_text("(+ a")
    (tmp_path / "notes.txt").write_text("(not a policy")
    ps = PolicySet({"old": "99"})
    with caplog.at_level(logging.ERROR, logger="mom.policy"):
        errors = ps.load_directory(str(tmp_path))
    assert [(e.policy, e.line) for e in errors] == [("20-bad", 1)]
    assert any("20-bad" in r.getMessage() for r in caplog.records)
    assert ps.names() == ["00-defs", "10-use"]
    assert ps.evaluate(host(), []) == [1, 2]


def test_load_directory_that_does_not_exist(tmp_path):
    ps = PolicySet({"old": "1"})
    errors = ps.load_directory(str(tmp_path / "nope"))
    assert len(errors) == 1 and "cannot read policy directory" in str(errors[0])
    assert ps.get_policies() == {}


def test_reset_reloads_the_directory(tmp_path):
    (tmp_path / "a.policy").write_text("1")
    ps = PolicySet()
    ps.load_directory(str(tmp_path))
    ps.set_policy("extra", "2")
    assert ps.reset() == []
    assert ps.get_policies() == {"a": "1"}


def test_load_file(tmp_path):
    path = tmp_path / "main.policy"
    path.write_text("(+ 20 22)")
    ps = PolicySet()
    ps.load_file(str(path))
    assert ps.get_policies() == {DEFAULT_POLICY_NAME: "(+ 20 22)"}
    path.write_text("(+ 20")
    with pytest.raises(PolicyError) as info:
        ps.load_file(str(path), "custom")
    assert info.value.policy == "custom"
    with pytest.raises(PolicyError):
        ps.load_file(str(tmp_path / "missing.policy"))
    assert ps.get_policies() == {DEFAULT_POLICY_NAME: "(+ 20 22)"}


def test_setting_while_evaluating_from_another_thread():
    ps = PolicySet({"a": "(with Guests g (+ 1 g.x))"})
    guests = [Entity({"name": f"vm{i}"}, [{"x": i}]) for i in range(50)]
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            ps.set_policy("b", f"{i}")
            ps.set_policy("b", None)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            result = ps.evaluate(host(), guests)
            if result[0] != [1 + i for i in range(50)]:
                errors.append(result)
    finally:
        stop.set()
        thread.join()
    assert errors == []


def test_a_builtin_name_bound_in_one_policy_is_seen_by_calls_in_another():
    h = Entity({"name": "host"}, [{"x": 7}])
    ps = PolicySet({"a": '(defvar max Host.Stat)', "b": '(max "x")'})
    assert ps.evaluate(h, [])[1] == 7


def test_evaluation_never_reads_text_again(monkeypatch):
    from mom.policy import compiler, reader
    ps = PolicySet({"p": "(def f (x) (* x 2)) (with Guests g (f g.x))"})
    g = Entity({"name": "vm"}, [{"x": 4}])

    def no_reading(text):
        raise AssertionError("policy text read during evaluation")
    monkeypatch.setattr(reader, "read", no_reading)
    monkeypatch.setattr(compiler, "read", no_reading)
    for _ in range(3):
        assert ps.evaluate(host(), [g]) == ["f", [8]]


def test_reloading_a_directory_with_a_broken_file_keeps_the_policies_in_force(
        tmp_path, caplog):
    (tmp_path / "00-defs.policy").write_text("(defvar a 1)")
    (tmp_path / "10-use.policy").write_text("(+ a 1)")
    ps = PolicySet()
    assert ps.load_directory(str(tmp_path)) == []
    (tmp_path / "00-defs.policy").write_text("(defvar a 2)")
    (tmp_path / "10-use.policy").write_text("(+ a\n  (oops")       # half edited
    with caplog.at_level(logging.ERROR, logger="mom.policy"):
        errors = ps.load_directory(str(tmp_path))
    assert [(e.policy, e.line) for e in errors] == [("10-use", 2)]
    assert ps.get_policies() == {"00-defs": "(defvar a 1)", "10-use": "(+ a 1)"}
    where = f"{tmp_path / '10-use.policy'}:2:"
    assert any(where in r.getMessage() for r in caplog.records)
    (tmp_path / "10-use.policy").write_text("(+ a 10)")              # fixed
    assert ps.reset() == []
    assert ps.evaluate(host(), []) == [2, 12]
