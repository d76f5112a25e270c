"""One peer's worker process for ``python -m bench --peers``, run as
``python -m bench.peer_worker NAME WHERE`` (WHERE: a SQLite file or a libpq connection string).

A module of its own so the peers' task functions keep the names they were enqueued under
(``bench.peers...``, not ``__main__...``).
"""

from __future__ import annotations

import sys

from bench.peers import CONSUMERS

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CONSUMERS:
        sys.exit(f"usage: python -m bench.peer_worker {{{','.join(CONSUMERS)}}} WHERE")
    CONSUMERS[sys.argv[1]](sys.argv[2])
