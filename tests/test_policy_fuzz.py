"""Fuzzing: nothing but PolicyError ever comes out of the language.

Arbitrary text either parses or raises PolicyError with a place; programs
built from the language's own pieces, right or wrong, either run or raise
PolicyError.  Numbers stay small and loops run over short lists so that
every example is quick.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy import Evaluator, PolicyError, compile_policy
from mom.policy.runtime import FRAME

FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- arbitrary text ---------------------------------------------------------
PIECES = ["(", ")", "[", "]", "{", "}", " ", "\n", "#", '"', "'", "defvar", "set", "def",
          "let", "if", "with", "and", "+", "-", "<=", "x", "Host.mem_free", "0x1F", "012",
          ".5", "1e3", "-8", "nil", "a..b", "e3", "0o7", "$", "9" * 30]


def assert_located(error: PolicyError) -> None:
    assert isinstance(error.line, int) and error.line >= 1
    assert f"line {error.line}" in str(error)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_policy_error(text):
    try:
        compile_policy(text, "fuzz")
    except PolicyError as error:
        assert_located(error)
        assert error.policy == "fuzz"


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=80).map("".join))
def test_policy_like_text_parses_or_raises_policy_error(text):
    try:
        compile_policy(text)
    except PolicyError as error:
        assert_located(error)


# -- random programs --------------------------------------------------------
VARIABLES = ["a", "b", "c"]               # the only names binding forms use
SEQUENCES = ["Guests", "L", "T", "Host", "g.io_tune", "nothing"]   # never rebound
FUNCTIONS = ["f", "g2"]
CALLABLES = ["+", "-", "*", "/", "<", ">", "<=", ">=", "==", "!=", ">>", "and", "or", "not",
             "min", "max", "null", "valid", "abs", "debug", "f", "g2", "undefined_fn",
             "Host.Stat", "Host.StatAvg", "Host.Prop", "Host.Control", "Host.GetControl",
             "Host.SetVar", "Host.GetVar", "Host.nothing", "dev.setTotalBytesSec"]
atoms = st.one_of(
    st.integers(-2, 2).map(str),
    st.sampled_from(["1.5", ".5", "-0.5", "nil", '"ab"', "'x'", '""', '"mem_free"', '"nope"']),
    st.sampled_from(VARIABLES + SEQUENCES + ["Host.mem_free", "Host.nothing", "g.x", "True",
                                             "undefined_var", "dev.maximum.total_bytes_sec"]),
)


def forms(children):
    def call(head, args):
        return f"({head} {' '.join(args)})"
    return st.one_of(
        st.builds(call, st.sampled_from(CALLABLES), st.lists(children, max_size=3)),
        st.builds(lambda x: f"(f {x})", children),          # the arity of PRELUDE's f
        st.builds(lambda x, y: f"(g2 {x} {y})", children, children),
        st.builds(lambda n, v: f"(defvar {n} {v})", st.sampled_from(VARIABLES), children),
        st.builds(lambda w, n, v: f"({w} {n} {v})", st.sampled_from(["set", "setq"]),
                  st.sampled_from(VARIABLES + ["Host.x"]), children),
        st.builds(lambda n, ps, body: f"(def {n} ({' '.join(ps)}) {body})",
                  st.sampled_from(FUNCTIONS), st.lists(st.sampled_from(VARIABLES), max_size=2),
                  children),
        st.builds(lambda bs, body: "(let (" + " ".join(f"({n} {v})" for n, v in bs) + f") {body})",
                  st.lists(st.tuples(st.sampled_from(VARIABLES), children), max_size=2),
                  children),
        st.builds(lambda parts: "(if " + " ".join(parts) + ")", st.lists(children, min_size=2,
                                                                         max_size=4)),
        st.builds(lambda s, n, body: f"(with {s} {n} {body})", st.sampled_from(SEQUENCES),
                  st.sampled_from(VARIABLES), children),
        st.builds(lambda xs: "{" + " ".join(xs) + "}", st.lists(children, max_size=3)),
    )


expressions = st.recursive(atoms, forms, max_leaves=12)
programs = st.lists(expressions, max_size=6).map("\n".join)


def evaluator():
    dev = IoTuneDevice("vda", "/dev/vda", maximum={"total_bytes_sec": 10})
    host = Entity({"name": "host"}, [{"mem_free": 5, "x": 1}, {"mem_free": 7, "x": None}])
    guest = Entity({"name": "vm"}, [{"x": 2, "io_tune": [dev]}])
    ev = Evaluator("fuzz")
    ev.bind("Host", host)
    ev.bind("Guests", [guest, guest])
    ev.bind("g", guest)
    ev.bind("dev", dev)
    ev.bind("L", [1, 0, "s"])
    ev.bind("T", "ab")
    ev.bind("True", 1)
    return ev


@FUZZ
@given(programs)
def test_random_programs_run_or_raise_policy_error(text):
    ev = evaluator()
    try:
        # Program.run, not Evaluator.run: the latter tidies up after errors.
        compile_policy(text, "fuzz", bound=ev.variables).run(ev._env)
    except PolicyError as error:
        assert_located(error)
        assert error.policy == "fuzz"
        if "recursion" in str(error):
            return          # Python's stack ran out mid-way; the scope may be partial
    # Whatever happened, every scope opened has been closed again: the
    # variables left are globals, and the sequences bound were not touched.
    assert ev._env[FRAME] is None
    assert ev.get("L") == [1, 0, "s"] and ev.get("T") == "ab"


# Functions of one and two parameters, defined up front so that calls of
# them run more often than random definitions alone would make them.
PRELUDE = "(def f (a) (+ a 1))\n(def g2 (b c) (if b c 0))\n"


def outcome(program):
    """What running a compiled program does: its values and controls, or its error."""
    ev = evaluator()
    try:
        values = ev.execute(program)
    except PolicyError as error:
        return ("error", str(error), repr(ev.variables))
    host, guest = ev.get("Host"), ev.get("g")
    return ("ok", repr(values), repr(ev.variables), host.controls, guest.controls,
            dict(host._variables))


@FUZZ
@given(programs)
def test_scopes_without_frames_behave_like_scopes_with_frames(text):
    """Calls and loops whose body has no defvar skip the frame (see
    compiler._has_defvar); giving every scope a frame changes nothing.  And a
    compiled program is reusable: a second run does exactly what the first did."""
    from mom.policy import compiler
    text = PRELUDE + text
    bound = evaluator().variables
    program = compile_policy(text, "fuzz", bound=bound)
    has_defvar = compiler._has_defvar
    compiler._has_defvar = lambda nodes: True
    try:
        framed = compile_policy(text, "fuzz", bound=bound)
    finally:
        compiler._has_defvar = has_defvar
    first, again, with_frames = outcome(program), outcome(program), outcome(framed)
    if any("recursion" in str(o) for o in (first, again, with_frames)):
        return              # where the stack runs out differs; all are errors
    assert first == again == with_frames
