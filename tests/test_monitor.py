"""A monitor keeps a bounded history and leaves out an entity whose collection fails."""
import logging

from mom.collectors.base import CollectionError, Collector, CollectorContext
from mom.config import new_config
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


def make(history=3):
    collector = Counter(CollectorContext(new_config()))
    return Monitor("guest vm1", {"name": "vm1"}, [collector], history), collector


def test_history_is_bounded_and_entity_sees_it():
    monitor, _ = make(history=3)
    for _ in range(5):
        assert monitor.collect()
    entity = monitor.entity()
    assert entity.n == 5
    assert entity.StatAvg("n") == 4.0            # mean of 3, 4, 5
    assert entity.opt is None                     # optional, never collected
    assert monitor.latest() == {"n": 5}           # undeclared keys are dropped


def test_collection_error_leaves_entity_out_and_logs_once(caplog):
    monitor, collector = make()
    monitor.collect()
    collector.fail_with = CollectionError("no guest agent")
    caplog.set_level(logging.INFO, logger="mom")
    for _ in range(3):
        assert not monitor.collect()
    assert monitor.entity() is None
    assert caplog.text.count("no guest agent") == 1
    collector.fail_with = None
    assert monitor.collect()
    assert monitor.entity().n == 2
    assert "collection works again" in caplog.text


def test_crashing_collector_is_logged_with_traceback_once(caplog):
    monitor, collector = make()
    collector.fail_with = ZeroDivisionError("oops")
    for _ in range(3):
        assert not monitor.collect()
    assert caplog.text.count("Traceback") == 1
    assert "Counter crashed" in caplog.text


def test_missing_required_field_leaves_entity_out():
    class Empty(Collector):
        fields = frozenset({"a"})

        def collect(self):
            return {"a": None}

    monitor = Monitor("host", {}, [Empty(CollectorContext(new_config()))], 3)
    assert not monitor.collect()
    assert monitor.entity() is None


def test_variables_survive_between_entities():
    monitor, _ = make()
    monitor.collect()
    monitor.entity().SetVar("seen", 1)
    monitor.collect()
    assert monitor.entity().GetVar("seen") == 1
