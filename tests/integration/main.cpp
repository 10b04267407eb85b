// Catch2 v2 runner of the integration tests (real loopback sockets against switchboard::tcp_server).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
