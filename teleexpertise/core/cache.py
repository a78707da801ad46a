"""Direct access to the Redis server behind the default cache, for the calls made on every API request.

Django's RedisCache builds a new redis-py client object for each operation, and redis-py fills its ~300 response
callbacks each time: about 0.1 ms of CPU, more than the round trip. One client per connection pool is kept here.
"""

import threading

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

_lock = threading.Lock()
_clients: dict[int, object] = {}


def shared_redis():
    """The default cache's Redis client (writes go to the primary), or None when the cache is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    pool = backend._cache._get_connection_pool(True)
    client = _clients.get(id(pool))
    if client is None:
        with _lock:
            client = _clients.setdefault(id(pool), backend._cache._client(connection_pool=pool))
    return client


def redis_key(name: str) -> str:
    """The key the default cache would use for `name` (its prefix and version)."""
    return caches["default"].make_and_validate_key(name)
