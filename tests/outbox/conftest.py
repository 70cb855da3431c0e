from tests.support.redis_server import private_redis, producer  # noqa: F401
