"""A monitor keeps a bounded, time-stamped history; a failing collector
leaves only its own fields out, and says so once."""
import logging

from mom.collectors.base import CollectionError, Collector, CollectorContext
from mom.config import defaults
from mom.monitor import Monitor


class Counter(Collector):
    fields = frozenset({"n", "opt"})
    optional_fields = frozenset({"opt"})

    def __init__(self, ctx):
        super().__init__(ctx)
        self.n = 0
        self.fail_with = None

    def collect(self):
        if self.fail_with is not None:
            raise self.fail_with
        self.n += 1
        return {"n": self.n, "junk": "not declared"}


class Vcpu(Collector):
    fields = frozenset({"vcpu_count"})

    def collect(self):
        return {"vcpu_count": 2}


def make(history=3):
    ctx = CollectorContext(defaults())
    collector = Counter(ctx)
    return Monitor("guest vm1", {"name": "vm1"}, [collector, Vcpu(ctx)], history), collector


def test_history_is_bounded_and_entity_sees_it():
    monitor, _ = make(history=3)
    for now in range(5):
        assert monitor.collect(float(now))
    entity = monitor.entity()
    assert entity.n == 5
    assert entity.StatAvg("n") == 4.0            # mean of 3, 4, 5
    assert entity.opt is None                     # optional, never collected
    assert monitor.latest() == {"n": 5, "vcpu_count": 2}   # undeclared keys dropped
    assert entity.stamp == 4.0 and entity.missing == frozenset()


def test_a_failing_collector_leaves_only_its_fields_out_and_logs_once(caplog):
    monitor, collector = make()
    monitor.collect(0.0)
    collector.fail_with = CollectionError("no guest agent")
    caplog.set_level(logging.INFO, logger="mom")
    for now in (1.0, 2.0, 3.0):
        assert not monitor.collect(now)
    entity = monitor.entity()
    # Still evaluated, with the other collector's data; the failed
    # required field is nil and marked missing (its controls are held back).
    assert entity.vcpu_count == 2 and entity.n is None
    assert entity.missing == frozenset({"n"}) and entity.stamp == 3.0
    assert caplog.text.count("no guest agent") == 1
    collector.fail_with = None
    assert monitor.collect(4.0)
    assert monitor.entity().n == 2 and monitor.entity().missing == frozenset()
    assert "Counter works again" in caplog.text


def test_crashing_collector_is_logged_with_traceback_once(caplog):
    monitor, collector = make()
    collector.fail_with = ZeroDivisionError("oops")
    for now in (1.0, 2.0, 3.0):
        assert not monitor.collect(now)
    assert caplog.text.count("Traceback") == 1
    assert "Counter crashed" in caplog.text


def test_missing_required_field_is_marked_missing():
    class Empty(Collector):
        fields = frozenset({"a"})

        def collect(self):
            return {"a": None}

    monitor = Monitor("host", {}, [Empty(CollectorContext(defaults()))], 3)
    assert not monitor.collect(1.0)
    assert monitor.entity().missing == frozenset({"a"})


def test_freshness_follows_the_sample_time():
    monitor, _ = make()
    assert not monitor.fresh(0.0, 10.0) and monitor.entity() is None
    monitor.collect(100.0)
    assert monitor.fresh(110.0, 10.0)
    assert not monitor.fresh(110.5, 10.0)


def test_variables_survive_between_entities():
    monitor, _ = make()
    monitor.collect(0.0)
    monitor.entity().SetVar("seen", 1)
    monitor.collect(1.0)
    assert monitor.entity().GetVar("seen") == 1
