"""The audit trail: who did what, when, with which model (append-only, hash-chained, local only).

:mod:`core.audit.log` is the log itself (SQLite, a hash chain, a head file beside it);
:mod:`core.audit.events` is what the CLI and the GUI call: ``record("classified", ...)``.
The log never leaves this machine except through ``neurohsi audit export`` / Help ▸ Audit log.
"""
