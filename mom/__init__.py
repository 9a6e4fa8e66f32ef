"""MOM, the Memory Overcommitment Manager: a policy engine for KVM hosts.

``mom.MOM(conf_file)`` is the whole public API; see ``mom/app.py``.
"""
__version__ = "0.1.0"
