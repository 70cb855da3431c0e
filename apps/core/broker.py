"""Broker transports: the embedded one (SQLAlchemy on SQLite, polled fast) and Redis
with a fix for losing the broker while messages are unacknowledged (below).

The embedded broker: kombu's SQLAlchemy transport on a SQLite file, polled fast.

kombu's SQLAlchemy transport passes every transport option to
``create_engine`` (so ``polling_interval`` cannot be set that way) and polls
every 1.0 s by default. With ``task_acks_late`` + prefetch 1 that caps a
worker at about one task per second (measured: 50 tasks in 51 s). This
subclass polls every 0.1 s. Select it with a plain SQLAlchemy URL and the
transport class (kombu refuses import paths inside URLs)::

    CELERY_BROKER_URL = "sqlite:///var/celery-broker.sqlite"
    CELERY_BROKER_TRANSPORT = "apps.core.broker:Transport"

Chosen over ``filesystem://`` because SQLite commits are atomic: the consumer
can never read a half-written message (kombu issue 1551).
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis
from kombu.transport import sqlalchemy as kombu_sqla

logger = logging.getLogger(__name__)


class Transport(kombu_sqla.Transport):
    polling_interval = 0.1


# --- Redis: survive a broker that goes away while messages are unacknowledged --------


_GONE = (AttributeError, OSError, kombu_redis.redis.exceptions.ConnectionError)


class _RedisQoS(kombu_redis.QoS):
    """kombu's Redis QoS, except that losing the broker while restoring unacked messages
    does not kill the worker.

    When Redis disappears while a worker holds unacknowledged messages, kombu closes
    the channel and tries to put them back, on a connection that is already gone:
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` escapes and the
    worker exits with "Unrecoverable error" (seen in tests/faults). Nothing is lost by
    skipping the restore: Redis redelivers unacked messages after the visibility
    timeout, and the outbox re-publishes anything no worker picked up.
    """

    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except _GONE as exc:
            logger.warning(
                "broker gone while restoring %d unacked message(s) (%s): left to the "
                "visibility timeout and the outbox", len(self._delivered), type(exc).__name__,
            )  # fmt: skip
            self._delivered.clear()
            return None

    # The same bug on acknowledging a task that finished after the connection died:
    # the message stays unacked in Redis and comes back after the visibility timeout,
    # where the idempotent task finds its study finished and does nothing.
    def ack(self, delivery_tag):
        try:
            return super().ack(delivery_tag)
        except _GONE as exc:
            logger.warning("broker gone, ack of %s skipped (%s)", delivery_tag, type(exc).__name__)
            self._delivered.pop(delivery_tag, None)
            return None

    def reject(self, delivery_tag, requeue=False):
        try:
            return super().reject(delivery_tag, requeue=requeue)
        except _GONE as exc:
            logger.warning("broker gone, reject of %s skipped (%s)", delivery_tag,
                           type(exc).__name__)  # fmt: skip
            self._delivered.pop(delivery_tag, None)
            return None


class RedisChannel(kombu_redis.Channel):
    QoS = _RedisQoS


class RedisTransport(kombu_redis.Transport):
    """Select with ``CELERY_BROKER_TRANSPORT = "apps.core.broker:RedisTransport"``."""

    Channel = RedisChannel
