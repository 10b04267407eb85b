// output_queue: small payloads coalesce into chunks, large ones stay shared; order, partial
// writes, stability of gathered bytes while more is appended, release of memory and references.
#include <switchboard/detail/output_queue.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

using switchboard::payload;
using switchboard::detail::chunk_pool;
using switchboard::detail::output_queue;

namespace {

// Everything gather() returns, concatenated, and how many runs it took.
std::string gathered(output_queue& q, std::size_t* runs = nullptr) {
    std::vector<output_queue::buffer> out(64);
    const std::size_t n = q.gather(out.data(), out.size());
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s.append(out[i].data, out[i].size);
    if (runs) *runs = n;
    return s;
}

} // namespace

TEST_CASE("output_queue: a burst of small payloads leaves in one buffer", "[output_queue]") {
    output_queue q(1024);
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        const std::string line = "msg alice hello " + std::to_string(i) + "\n";
        q.push(payload::copy_of(line));
        expected += line;
    }
    std::size_t runs = 0;
    CHECK(gathered(q, &runs) == expected);
    CHECK(runs == 1); // about 2 KB: within the first 4 KiB chunk
    CHECK(q.size() == expected.size());
    CHECK(q.referenced() == 0);
}

TEST_CASE("output_queue: a payload over copy_max is shared, not copied", "[output_queue]") {
    output_queue q(16);
    const payload big = payload::copy_of(std::string(100, 'x'));
    q.push(big);
    CHECK(big.use_count() == 2);
    CHECK(q.referenced() == 1);
    output_queue::buffer b[4]{}; // {}: see "gathered bytes stay put" below
    REQUIRE(q.gather(b, 4) == 1);
    CHECK(b[0].data == big.data()); // the bytes written are the payload's own
    CHECK(b[0].size == 100);
    q.consume(99);
    CHECK(big.use_count() == 2); // one byte left: still held
    q.consume(1);
    CHECK(big.use_count() == 1);
    CHECK(q.empty());
    CHECK(q.referenced() == 0);

    // A reference wholly written is dropped at once, while later bytes are still queued.
    q.push(big);
    q.push(payload::copy_of("tail\n"));
    q.consume(100);
    CHECK(big.use_count() == 1);
    CHECK(q.referenced() == 0);
    CHECK(gathered(q) == "tail\n");
}

TEST_CASE("output_queue: copy_max 0 references every payload", "[output_queue]") {
    output_queue q(0);
    const payload a = payload::copy_of("a\n");
    q.push(a);
    q.push(a);
    CHECK(a.use_count() == 3);
    CHECK(gathered(q) == "a\na\n");
}

TEST_CASE("output_queue: mixed small and large payloads keep their order", "[output_queue]") {
    output_queue q(8);
    const payload big = payload::copy_of("0123456789abcdef\n");
    q.push(payload::copy_of("one\n"));
    q.push(payload::copy_of("two\n"));
    q.push(big);
    q.push(payload::copy_of("three\n"));
    q.push(payload{}); // empty: nothing queued
    std::size_t runs = 0;
    CHECK(gathered(q, &runs) == "one\ntwo\n0123456789abcdef\nthree\n");
    CHECK(runs == 3); // chunk, reference, chunk
}

TEST_CASE("output_queue: partial consumption resumes mid-run", "[output_queue]") {
    output_queue q(1024);
    q.push(payload::copy_of("hello\n"));
    q.push(payload::copy_of("world\n"));
    q.consume(3);
    CHECK(gathered(q) == "lo\nworld\n");
    CHECK(q.size() == 9);
    q.consume(100); // clamped
    CHECK(q.empty());
    CHECK(gathered(q).empty());
}

TEST_CASE("output_queue: gathered bytes stay put while more is appended", "[output_queue]") {
    output_queue q(1024);
    q.push(payload::copy_of("first line\n"));
    // The buffers are value-initialised: gather() writes only the runs it returns, and GCC (-O2,
    // -Wmaybe-uninitialized) cannot see that REQUIRE ends the test when it returns 0 (Catch2's
    // failure path is out of line), so an uninitialised array is a read it cannot rule out.
    output_queue::buffer before[1]{};
    REQUIRE(q.gather(before, 1) == 1);
    const char* const data = before[0].data;
    // Enough to fill the first chunk and allocate several more (and grow the block list).
    for (int i = 0; i < 5000; ++i) q.push(payload::copy_of(std::string(90, 'y')));
    CHECK(std::string(data, before[0].size) == "first line\n");
    output_queue::buffer after[1]{};
    REQUIRE(q.gather(after, 1) == 1);
    CHECK(after[0].data == data);
}

TEST_CASE("output_queue: chunks grow up to max_chunk and are freed when written", "[output_queue]") {
    output_queue q(1024);
    const std::string line(1000, 'z');
    for (int i = 0; i < 300; ++i) q.push(payload::copy_of(line)); // 300 KB
    std::vector<output_queue::buffer> runs(64);
    const std::size_t n = q.gather(runs.data(), runs.size());
    REQUIRE(n >= 2);
    CHECK(runs[0].size <= output_queue::min_chunk);
    for (std::size_t i = 0; i < n; ++i) CHECK(runs[i].size <= output_queue::max_chunk);
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) total += runs[i].size;
    CHECK(total == 300 * line.size());
    CHECK(n < 20); // doubling from 4 KiB to 64 KiB: 4+8+16+32+64*4 KiB
}

TEST_CASE("output_queue: random pushes and partial writes match a string model", "[output_queue]") {
    std::mt19937 rng(12345);
    for (int round = 0; round < 50; ++round) {
        output_queue q(std::uniform_int_distribution<std::size_t>(0, 200)(rng));
        std::string model;
        std::vector<payload> held; // payloads the test still holds, to check references drop
        for (int step = 0; step < 400; ++step) {
            if (rng() % 3 != 0) {
                std::string bytes(std::uniform_int_distribution<std::size_t>(0, 500)(rng), '\0');
                for (char& c : bytes) c = static_cast<char>('a' + rng() % 26);
                payload p = payload::copy_of(bytes);
                q.push(p);
                model += bytes;
                held.push_back(std::move(p));
            } else {
                const std::size_t n = std::uniform_int_distribution<std::size_t>(0, model.size() + 10)(rng);
                q.consume(n);
                model.erase(0, std::min(n, model.size()));
            }
            REQUIRE(q.size() == model.size());
            std::vector<output_queue::buffer> runs(1000);
            const std::size_t count = q.gather(runs.data(), runs.size());
            std::string got;
            for (std::size_t i = 0; i < count; ++i) {
                REQUIRE(runs[i].size > 0);
                got.append(runs[i].data, runs[i].size);
            }
            REQUIRE(got == model);
        }
        q.consume(q.size());
        CHECK(q.referenced() == 0);
        for (const payload& p : held) CHECK(p.use_count() == (p.empty() ? 0 : 1)); // the queue holds none
    }
}

TEST_CASE("chunk_pool: a released chunk is handed out again, up to max_bytes kept", "[output_queue]") {
    chunk_pool pool(8 * 1024);
    char* const a = pool.acquire(4096);
    char* const b = pool.acquire(4096);
    char* const c = pool.acquire(4096);
    pool.release(a, 4096);
    pool.release(b, 4096);
    pool.release(c, 4096); // over max_bytes: freed, not kept
    CHECK(pool.free_bytes() == 8192);
    char* const again = pool.acquire(4096);
    CHECK((again == a || again == b));
    CHECK(pool.free_bytes() == 4096);
    char* const big = pool.acquire(65536); // another size: a new chunk
    CHECK(pool.free_bytes() == 4096);
    pool.release(big, 65536); // 4 KiB + 64 KiB is over the bound: freed
    CHECK(pool.free_bytes() == 4096);
    pool.release(again, 4096);
    CHECK(pool.free_bytes() == 8192);
}

TEST_CASE("chunk_pool: trim frees what stayed unused for a whole period", "[output_queue]") {
    chunk_pool pool(1 << 20);
    char* const a = pool.acquire(8192);
    char* const b = pool.acquire(8192);
    pool.release(a, 8192);
    pool.release(b, 8192);
    pool.trim(); // starts a period: nothing known to be unused yet
    CHECK(pool.free_bytes() == 16384);
    char* const taken = pool.acquire(8192); // one is used during the period
    pool.release(taken, 8192);
    pool.trim(); // the other stayed free throughout: freed
    CHECK(pool.free_bytes() == 8192);
    pool.trim(); // and now the last one too
    CHECK(pool.free_bytes() == 0);
}

TEST_CASE("output_queue: written chunks go back to the pool and are reused", "[output_queue]") {
    chunk_pool pool(1 << 20);
    output_queue q(1024, &pool);
    q.push(payload::copy_of("hello\n"));
    output_queue::buffer first[1]{}; // {}: see "gathered bytes stay put" above
    REQUIRE(q.gather(first, 1) == 1);
    const char* const chunk = first[0].data;
    q.consume(6);
    CHECK(q.empty());
    CHECK(pool.free_bytes() == output_queue::min_chunk);
    q.push(payload::copy_of("again\n"));
    CHECK(pool.free_bytes() == 0);
    output_queue::buffer second[1]{};
    REQUIRE(q.gather(second, 1) == 1);
    CHECK(second[0].data == chunk);
    CHECK(std::string(second[0].data, second[0].size) == "again\n");
}

TEST_CASE("output_queue: held() counts chunks whole, and small payloads between large ones get the smallest chunk",
          "[output_queue]") {
    // The pattern an attacker used: a referenced payload closes the tail chunk, so every small
    // payload after one opens a chunk. Chunk growth restarts after a reference, and held()
    // counts what is really held, so the output bound (which charges held()) is a memory bound.
    output_queue q(1024);
    const payload big = payload::copy_of(std::string(1100, 'A'));
    const payload small = payload::copy_of("x\n");
    for (int i = 0; i < 40; ++i) {
        q.push(big);
        q.push(small);
    }
    CHECK(q.size() == 40 * (1100 + 2));
    CHECK(q.referenced() == 40);
    CHECK(q.held() == 40 * 1100 + 40 * output_queue::min_chunk);
    // Consumed blocks are no longer held.
    q.consume(1100 + 2);
    CHECK(q.held() == 39 * 1100 + 39 * output_queue::min_chunk);
    q.clear();
    CHECK(q.held() == 0);
}
