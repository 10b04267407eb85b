// Catch2 v2 runner of the tests that run the built tcp_chat as a process of its own.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
