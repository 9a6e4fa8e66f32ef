"""Lexical rules of the policy language (docs/policy-language.md, "Lexical rules")."""
import pytest

from mom.policy import Evaluator, PolicyError
from mom.policy.reader import Form, Literal, Symbol, read


def run(text):
    return Evaluator().run(text)


# -- whitespace and comments ------------------------------------------------
def test_whitespace_is_free():
    assert run("  (+\n\t1\n\n   2 )  ") == [3]


def test_comment_runs_to_end_of_line():
    assert run("# a comment\n(+ 1 2) # another\n") == [3]


def test_comment_inside_an_expression():
    assert run("(+ 1 # one\n 2) # two") == [3]


def test_comment_only_and_empty_programs_are_valid():
    assert run("") == []
    assert run("# nothing here\n\n") == []


# -- numbers ----------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("10", 10), ("-8", -8), ("0", 0), ("0xFF", 255), ("0x1f", 31), ("0o11", 9),
])
def test_integers(text, value):
    (result,) = run(text)
    assert result == value and type(result) is int


def test_leading_zero_decimal_is_not_an_integer():
    with pytest.raises(PolicyError) as info:
        run("012")
    assert "'012' is not a number" in str(info.value)
    assert info.value.line == 1 and info.value.column == 1


@pytest.mark.parametrize("text, value", [
    ("1.5", 1.5), (".3", 0.3), ("10.0e3", 10000.0), ("100e-2", 1.0), ("1e3", 1000.0),
    ("-2.5", -2.5),
])
def test_floats(text, value):
    (result,) = run(text)
    assert result == value and type(result) is float


def test_exponent_alone_is_a_symbol_not_a_number():
    assert isinstance(read("e3")[0], Symbol)
    ev = Evaluator()
    ev.bind("e3", "a symbol")
    assert ev.run("e3") == ["a symbol"]


# -- strings, nil -----------------------------------------------------------
def test_strings_in_either_quote():
    assert run("\"double\" 'single' \"it's\" '\"q\"'") == ["double", "single", "it's", '"q"']


def test_string_value_is_the_text_between_the_quotes():
    assert run('"a # not a comment (nor a bracket"') == ["a # not a comment (nor a bracket"]
    assert run('"two\nlines"') == ["two\nlines"]


def test_nil_is_none():
    assert run("nil") == [None]


# -- symbols ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["x", "_x", "ksm_pages", "ksm-pages", "a1", "Host.mem_free",
                                  "a.b.c", "x_1-y.z"])
def test_symbol_shapes(name):
    (node,) = read(name)
    assert isinstance(node, Symbol) and node.name == name


def test_dotted_symbol_reads_an_attribute():
    from mom.entity import Entity
    ev = Evaluator()
    ev.bind("guest", Entity({"name": "vm"}, [{"balloon_cur": 1024}]))
    assert ev.run("guest.balloon_cur") == [1024]


@pytest.mark.parametrize("text", ["a..b", "a.", "1abc", "$x", "-x", "a@b"])
def test_malformed_tokens_are_syntax_errors(text):
    with pytest.raises(PolicyError) as info:
        read(text)
    assert info.value.line == 1


# -- brackets ---------------------------------------------------------------
def test_square_brackets_are_parentheses():
    assert run("[+ 1 2] (* [+ 1 1] 3)") == [3, 6]


def test_curly_block_yields_last_value():
    assert run("{1 2 3}") == [3]
    assert run("{}") == [None]


def test_block_evaluates_every_expression_in_order():
    assert run("(defvar n 0) {(set n (+ n 1)) (set n (* n 10)) n}") == [0, 10]


def test_block_opens_no_scope():
    # a defvar inside a block defines in the enclosing (here global) scope
    assert run("{(defvar inner 5)} inner") == [5, 5]


def test_tree_keeps_positions():
    (form,) = read("\n  (abc\n     12)")
    assert isinstance(form, Form) and (form.line, form.col) == (2, 3)
    sym, lit = form.items
    assert (sym.line, sym.col) == (2, 4)
    assert isinstance(lit, Literal) and (lit.line, lit.col) == (3, 6)


# -- syntax errors ----------------------------------------------------------
def test_unclosed_paren_names_where_it_opened():
    text = "(defvar a 1)\n" * 11 + "    (if a\n  1 2"
    with pytest.raises(PolicyError) as info:
        run(text)
    assert "unclosed '(' opened at line 12 col 5" in str(info.value)
    assert (info.value.line, info.value.column) == (12, 5)


def test_unexpected_closing_bracket():
    with pytest.raises(PolicyError) as info:
        run("(+ 1 2))")
    assert "unexpected ')' at line 1 col 8" in str(info.value)


def test_mismatched_brackets():
    with pytest.raises(PolicyError) as info:
        run("(+ 1\n  2]")
    assert "expected ')' to close the '(' opened at line 1 col 1, got ']'" in str(info.value)
    assert (info.value.line, info.value.column) == (2, 4)


def test_unclosed_string():
    with pytest.raises(PolicyError) as info:
        run('(defvar a 1)\n(defvar s "abc)\n')
    assert "unclosed string" in str(info.value)
    assert (info.value.line, info.value.column) == (2, 11)


def test_nesting_limit_is_a_syntax_error_not_a_crash():
    with pytest.raises(PolicyError) as info:
        run("(" * 5000 + ")" * 5000)
    assert "nested more than" in str(info.value)


def test_non_string_text_is_refused():
    with pytest.raises(PolicyError):
        read(b"(+ 1 2)")
