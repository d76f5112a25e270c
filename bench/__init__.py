"""AOL's benchmark harness: ``python -m bench`` (see docs/performance.md).

Every scenario runs on fresh databases it creates itself, several times, next to a raw-SQL
floor (:mod:`bench.floor`) so AOL's numbers read as ratios of the least a durable queue
can do on the same machine.
"""
