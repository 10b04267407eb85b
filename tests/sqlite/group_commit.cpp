// sqlite_inbox group commit: thousands of appends are committed in far fewer transactions, and
// their completions all come back `ok`, in the order of the calls, only through run_completions()
// after the writer asked for it (wake).
#include "sqlite_test.hpp"

#include <atomic>
#include <stdexcept>
#include <vector>

using namespace sqlite_test;
using switchboard::sqlite_inbox_options;
using switchboard::status;

TEST_CASE("sqlite_inbox: group commit — fewer transactions than appends, completions ok and in call order",
          "[sqlite]") {
    temp_dir dir;
    std::atomic<int> wakes{0};
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    o.inbox.max_per_user = 100000;
    o.wake = [&] { wakes.fetch_add(1, std::memory_order_relaxed); };
    constexpr int appends = 5000;
    auto store = open_store(o);
    store->remember(n("bob"));
    std::vector<int> order;
    std::vector<status> codes;
    order.reserve(appends);
    for (int i = 0; i < appends; ++i) {
        const auto r = store->append(n("bob"), "alice", "message " + std::to_string(i), i,
                                     [&order, &codes, i](status s) {
                                         order.push_back(i);
                                         codes.push_back(s);
                                     });
        REQUIRE(r.code == status::ok);
        REQUIRE(r.seq == static_cast<std::uint64_t>(i + 1));
    }
    store->flush();
    CHECK(wakes.load() >= 1);
    CHECK(store->run_completions() == static_cast<std::size_t>(appends));
    REQUIRE(order.size() == static_cast<std::size_t>(appends));
    for (int i = 0; i < appends; ++i) REQUIRE(order[static_cast<std::size_t>(i)] == i);
    CHECK(codes == std::vector<status>(appends, status::ok));
    const auto stats = store->stats();
    INFO("commits: " << stats.commits);
    CHECK(stats.committed_appends == static_cast<std::uint64_t>(appends));
    CHECK(stats.commits * 2 < static_cast<std::uint64_t>(appends)); // batched, not one per append
    CHECK(stats.rollbacks == 0);
    CHECK(stats.queued == 0);
    CHECK(rows_in_file(o.path, "bob").size() == static_cast<std::size_t>(appends));
}

TEST_CASE("sqlite_inbox: past max_queued an append is store_busy at once, and nothing is stored", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    o.max_queued = 10;
    auto store = open_store(o);
    store->remember(n("bob"));
    std::vector<status> codes;
    int refused = 0;
    for (int i = 0; i < 200; ++i) {
        const auto r = store->append(n("bob"), "alice", "m", 0, [&](status s) { codes.push_back(s); });
        if (r.code == status::store_busy) ++refused;
        else REQUIRE(r.code == status::ok);
    }
    // Completions not yet run count against the bound too: at most 10 taken without running them.
    CHECK(refused >= 190);
    CHECK(store->stored(n("bob")) == 200u - static_cast<unsigned>(refused));
    store->flush();
    store->run_completions();
    CHECK(codes.size() == 200u - static_cast<unsigned>(refused)); // never called for a refused one
    CHECK(store->append(n("bob"), "alice", "m", 0, {}).code == status::ok); // room again
    CHECK(store->stats().refused == static_cast<std::uint64_t>(refused));
}

TEST_CASE("sqlite_inbox: a completion handler that throws leaves the ones after it queued, in order, before "
          "later ones",
          "[sqlite]") {
    // run_completions() rethrows; the completions after the one that threw run at the next call,
    // ahead of those of appends committed since, and each exactly once.
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    auto store = open_store(o);
    store->remember(n("bob"));
    std::vector<int> order;
    const auto append = [&](int i) {
        REQUIRE(store->append(n("bob"), "alice", "m", 0, [&order, i](status) {
                           order.push_back(i);
                           if (i == 3) throw std::runtime_error("handler 3");
                       }).code == status::ok);
    };
    for (int i = 0; i < 10; ++i) append(i);
    store->flush();
    CHECK_THROWS_AS(store->run_completions(), std::runtime_error);
    CHECK(order == std::vector<int>{0, 1, 2, 3});
    for (int i = 10; i < 15; ++i) append(i);
    store->flush();
    CHECK(store->run_completions() == 11u);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
    CHECK(store->run_completions() == 0u);
}
