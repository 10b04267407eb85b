// Consumer smoke test for the Redis client: built against switchboard::redis /
// dependency('switchboard-redis') / `pkg-config switchboard-redis`. Proves the include path,
// Asio, hiredis and libcrypto are provided, without a Redis: the SHA-1 of a script is Redis' own,
// and a connection to a closed port keeps retrying without connecting, then stops.
#include <switchboard/redis/connection.hpp>
#include <switchboard/redis/subscriber.hpp>

#include <chrono>
#include <cstdio>

int main()
{
    // SCRIPT LOAD "return 1" answers this SHA-1 (Redis docs, EVALSHA).
    const auto s = switchboard::redis::make_script("return 1");
    if (s.sha1 != "e0e1f9fabfc9d4800c877a703b823ac0578ff8db") {
        std::fprintf(stderr, "wrong SHA-1 %s\n", s.sha1.c_str());
        return 1;
    }
    switchboard::net::io_context io;
    switchboard::redis::connection_options o;
    o.port = 1; // nothing listens there: refused, retried with backoff
    o.backoff_min = std::chrono::milliseconds(5);
    switchboard::redis::connection c(io, o);
    switchboard::redis::subscriber sub(io, o);
    bool up = false;
    c.on_up([&] { up = true; });
    c.start();
    sub.subscribe("channel");
    sub.start();
    io.run_for(std::chrono::milliseconds(100));
    c.stop();
    sub.stop();
    const bool ok = !up && !c.connected() && !sub.connected();
    std::printf("switchboard redis consumer: %s (hiredis %d.%d.%d)\n", ok ? "ok" : "failed",
                HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    return ok ? 0 : 1;
}
