"""mom-sim: a simulated KVM host driven by the real MOM.

- :mod:`mom.sim.scenario`: scenarios (shipped TOML files in ``scenarios/``);
- :mod:`mom.sim.workload`: what each guest asks of its memory over time;
- :mod:`mom.sim.model`: the host, its guests, swap and KSM, with exact books;
- :mod:`mom.sim.procfs`: the host as /proc and /sys text for MOM's collectors;
- :mod:`mom.sim.hypervisor`: MOM's hypervisor interface onto the model;
- :mod:`mom.sim.runner`: a run, with or without MOM; :mod:`mom.sim.summary`
  its figures; :mod:`mom.sim.picture` its picture; :mod:`mom.sim.cli` ``mom-sim``.

See docs/simulator.md.
"""
