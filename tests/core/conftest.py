from tests.support.redis_server import private_redis  # noqa: F401 - a fixture
