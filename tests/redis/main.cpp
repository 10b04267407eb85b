// switchboard_redis_tests: the Redis client (include/switchboard/redis/) against a real
// redis-server started per test (redis_server.hpp).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
