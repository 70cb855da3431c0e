"""``apps.core.pools.process_pool``: one pool per name and size, kept; a forked child
gets its own, which runs work (an inherited pool has no threads)."""

from __future__ import annotations

import multiprocessing

from apps.core.pools import process_pool


def test_the_same_pool_is_returned_and_it_runs_work():
    pool = process_pool(name="test-pool", workers=2)
    assert process_pool(name="test-pool", workers=2) is pool
    assert process_pool(name="test-pool", workers=3) is not pool
    assert list(pool.map(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]


def _in_child(queue) -> None:
    child = process_pool(name="test-pool", workers=2)
    queue.put(child.submit(sum, [1, 2, 3]).result(timeout=10))  # inherited: would time out


def test_a_forked_child_gets_a_pool_of_its_own_that_runs_work():
    parent = process_pool(name="test-pool", workers=2)
    parent.submit(int).result()  # the parent's threads exist before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_in_child, args=(queue,))
    proc.start()
    total = queue.get(timeout=20)
    proc.join(timeout=20)
    assert proc.exitcode == 0
    assert total == 6
