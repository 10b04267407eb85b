// sqlite_inbox: two senders interleaving 10,000 appends each to one offline user (called under one
// serialisation, as a router does): sequence numbers unique and gap-free, all stored after reopening,
// each sender's messages in its own order.
#include "sqlite_test.hpp"

#include <string>
#include <vector>

using namespace sqlite_test;
using switchboard::sqlite_inbox_options;
using switchboard::status;
using switchboard::stored_message;

TEST_CASE("sqlite_inbox: two senders, 10,000 messages each, to one user — unique gap-free numbers, all stored",
          "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    o.inbox.max_per_user = 30000;
    constexpr int each = 10000;
    std::size_t ok = 0;
    {
        auto store = open_store(o);
        store->remember(n("bob"));
        std::vector<std::uint64_t> given;
        for (int i = 0; i < each; ++i) {
            for (const char* from : {"alice", "carol"}) {
                const auto r = store->append(n("bob"), from, std::string(from) + " " + std::to_string(i), i,
                                             [&](status s) { ok += s == status::ok; });
                REQUIRE(r.code == status::ok);
                given.push_back(r.seq);
            }
            if (i % 1000 == 0) store->run_completions(); // as a host would, now and then
        }
        for (std::size_t k = 0; k < given.size(); ++k) REQUIRE(given[k] == k + 1);
        store->flush();
        store->run_completions();
    }
    CHECK(ok == 2u * each);
    auto store = open_store(o);
    std::vector<stored_message> all;
    store->for_each(n("bob"), [&](const switchboard::stored_message_view& m) { all.push_back(m.owned()); });
    REQUIRE(all.size() == 2u * each);
    int next_alice = 0;
    int next_carol = 0;
    for (std::size_t k = 0; k < all.size(); ++k) {
        REQUIRE(all[k].seq == k + 1);
        int& next = all[k].from == "alice" ? next_alice : next_carol;
        REQUIRE(all[k].text == all[k].from + " " + std::to_string(next));
        ++next;
    }
    CHECK(next_alice == each);
    CHECK(next_carol == each);
    CHECK(store->append(n("bob"), "alice", "after", 0, {}).seq == 2u * each + 1);
}
