// payload: one immutable buffer shared by copies; reference counting; empty payloads; opaque bytes.
#include <switchboard/payload.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <string_view>
#include <utility>
#include <vector>

using switchboard::payload;

TEST_CASE("payload: copy_of copies the bytes once, copies share the buffer", "[payload]") {
    std::string source = "hello world\n";
    const payload a = payload::copy_of(source);
    source[0] = 'J'; // the payload owns its own copy of the bytes
    REQUIRE(a.size() == 12);
    CHECK(a.view() == "hello world\n");
    CHECK(a.use_count() == 1);
    CHECK_FALSE(a.empty());
    CHECK(a.data() != source.data());

    {
        const payload b = a; // NOLINT: copy on purpose
        CHECK(same_buffer(a, b));
        CHECK(b.data() == a.data());
        CHECK(a.use_count() == 2);
        CHECK(b.use_count() == 2);
        payload c;
        c = b;
        CHECK(same_buffer(a, c));
        CHECK(a.use_count() == 3);
    }
    CHECK(a.use_count() == 1);

    // Equal bytes in another buffer are not the same buffer.
    const payload other = payload::copy_of("hello world\n");
    CHECK(other.view() == a.view());
    CHECK_FALSE(same_buffer(a, other));
}

TEST_CASE("payload: many copies in a vector count exactly", "[payload]") {
    const payload p = payload::copy_of("x");
    std::vector<payload> copies(1000, p);
    CHECK(p.use_count() == 1001);
    for (const payload& c : copies) REQUIRE(same_buffer(c, p));
    copies.resize(10);
    CHECK(p.use_count() == 11);
    copies.clear();
    CHECK(p.use_count() == 1);
}

TEST_CASE("payload: move leaves the source empty and keeps the count", "[payload]") {
    payload a = payload::copy_of("abc");
    const char* const bytes = a.data();
    payload b = std::move(a);
    CHECK(b.data() == bytes);
    CHECK(b.use_count() == 1);
    CHECK(a.empty()); // NOLINT(bugprone-use-after-move): documented state
    CHECK(a.size() == 0);
    CHECK(a.use_count() == 0);
    CHECK(a.data() == nullptr);

    payload c = payload::copy_of("zzz");
    const payload keep_c = c;
    CHECK(keep_c.use_count() == 2);
    c = std::move(b); // releases c's old buffer reference, takes b's
    CHECK(c.data() == bytes);
    CHECK(c.use_count() == 1);
    CHECK(keep_c.use_count() == 1);
    CHECK(keep_c.view() == "zzz");
    CHECK(b.empty()); // NOLINT(bugprone-use-after-move)

    // Copy-assignment releases the old reference too.
    payload d = payload::copy_of("old");
    const payload keep_d = d;
    d = c;
    CHECK(keep_d.use_count() == 1);
    CHECK(c.use_count() == 2);
    CHECK(d.view() == "abc");

    // Self-assignment is harmless.
    payload& self = d;
    d = self;
    CHECK(d.view() == "abc");
    CHECK(c.use_count() == 2);
    d = std::move(self);
    CHECK(d.view() == "abc");
    CHECK(c.use_count() == 2);
}

TEST_CASE("payload: swap exchanges buffers", "[payload]") {
    payload a = payload::copy_of("A");
    payload b = payload::copy_of("BB");
    a.swap(b);
    CHECK(a.view() == "BB");
    CHECK(b.view() == "A");
}

TEST_CASE("payload: empty payloads", "[payload]") {
    const payload def;
    CHECK(def.empty());
    CHECK(def.size() == 0);
    CHECK(def.data() == nullptr);
    CHECK(def.view().empty());
    CHECK(def.use_count() == 0);

    const payload from_empty = payload::copy_of("");
    CHECK(from_empty.empty());
    CHECK(from_empty.use_count() == 0);
    const payload built = payload::build(0, [](char*) { FAIL("fill must not run for size 0"); });
    CHECK(built.empty());

    const payload copy = def;
    CHECK(copy.empty());
    CHECK(copy.use_count() == 0);
}

TEST_CASE("payload: NUL and non-UTF-8 bytes are kept verbatim", "[payload]") {
    const std::string bytes("\0a\0\xFF\x80\n\0", 7);
    const payload p = payload::copy_of(bytes);
    REQUIRE(p.size() == 7);
    CHECK(std::string(p.data(), p.size()) == bytes);
    CHECK(p.view() == std::string_view(bytes));

    std::string all;
    for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    const payload q = payload::copy_of(all);
    CHECK(q.view() == all);
}

TEST_CASE("payload: build lets fill write exactly size bytes", "[payload]") {
    int calls = 0;
    const payload p = payload::build(5, [&](char* out) {
        ++calls;
        for (int i = 0; i < 5; ++i) out[i] = static_cast<char>('a' + i);
    });
    CHECK(calls == 1);
    CHECK(p.view() == "abcde");
    CHECK(p.use_count() == 1);
}

TEST_CASE("payload: small blocks are recycled per thread, also when freed on another thread", "[payload]") {
#ifndef SWITCHBOARD_NO_PAYLOAD_CACHE
    const void* first = nullptr;
    {
        const payload a = payload::copy_of("hello\n");
        first = a.data();
    }
    const payload b = payload::copy_of("again, same block\n"); // the block just freed on this thread
    CHECK(static_cast<const void*>(b.data()) == first);

    const std::string big(1000, 'z'); // over block_bytes: plain operator new, never cached
    const void* big_data = nullptr;
    {
        const payload c = payload::copy_of(big);
        big_data = c.data();
        CHECK(c.view() == big);
    }
    (void)big_data; // may or may not come back from malloc: nothing to assert
#endif
    // Built here, released on another thread (whose list then holds the block), and the reverse.
    payload shared = payload::copy_of("crosses threads\n");
    payload built_there;
    std::thread t([&] {
        payload mine = std::move(shared);
        CHECK(mine.view() == "crosses threads\n");
        built_there = payload::copy_of("built on the other thread\n");
    }); // `mine` released on t
    t.join();
    CHECK(shared.empty());
    CHECK(built_there.view() == "built on the other thread\n");
    built_there = payload{}; // released here
    for (int i = 0; i < 1000; ++i) { // more than the list keeps: the rest goes to operator delete
        std::vector<payload> many;
        for (int j = 0; j < 100; ++j) many.push_back(payload::copy_of("x"));
    }
}
