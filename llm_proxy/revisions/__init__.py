"""The revision graph, the reconciled state of both version tables, and plans.

``graph``, ``reconcile`` and ``plan`` are pure (no I/O) and unit-tested by
tables; ``sources`` builds a graph from the project's files without Alembic.
"""
