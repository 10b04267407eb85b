// The late answers of a durable store at the router's level (docs/design.md, "Durable
// outcomes"): a store that commits later (as the SQLite store does) has each `/msg` to an offline
// user answered `ok queued <user>` only when its completion runs, in the order of the messages.
// The router sends such an answer during the completion when nothing waits before it; a host
// that runs a batch of completions under a hold gets the answers when the hold ends, as for any
// deferred delivery. (The SQLite store itself: tests/integration/durable_store.cpp.)
#include "line_client.hpp"

#include <switchboard/inbox_store.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

using switchboard::append_result;
using switchboard::inbox_store;
using switchboard::memory_inbox;
using switchboard::name;
using switchboard::router;
using switchboard::status;
using switchboard::stored_message_view;
using switchboard_test::line_client;
using switchboard_test::lines_t;

namespace {

// memory_inbox's decisions, with each append's completion kept until complete() (a store whose
// commit is reported later, under the host's serialisation).
class later_store final : public inbox_store {
public:
    bool is_known(const name& user) const override { return view_.is_known(user); }
    void remember(const name& user) override { view_.remember(user); }
    append_result append(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                         durable_handler on_durable, std::uint64_t sent_key = 0) override {
        const append_result a = view_.append(user, from, text, now_ms, {}, sent_key);
        if (a.code == status::ok && on_durable) done_.push_back(std::move(on_durable));
        return a;
    }
    status acknowledge(const name& user, std::uint64_t through) override { return view_.acknowledge(user, through); }
    std::uint64_t highest_seq(const name& user) const override { return view_.highest_seq(user); }
    std::size_t stored(const name& user) const override { return view_.stored(user); }
    void for_each(const name& user, std::uint64_t after,
                  const std::function<bool(const stored_message_view&)>& visit) const override {
        view_.for_each(user, after, visit);
    }
    void remove_all(const name& user) override { view_.remove_all(user); }
    std::size_t expire(std::int64_t now_ms) override { return view_.expire(now_ms); }

    // Reports the first `n` appends not yet reported (all by default) committed, in call order.
    void complete(std::size_t n = static_cast<std::size_t>(-1)) {
        n = std::min(n, done_.size());
        std::vector<durable_handler> done(std::make_move_iterator(done_.begin()),
                                          std::make_move_iterator(done_.begin() + static_cast<std::ptrdiff_t>(n)));
        done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
        for (durable_handler& h : done) h(status::ok);
    }

private:
    static switchboard::memory_inbox_options roomy() {
        switchboard::memory_inbox_options o;
        o.max_per_user = 100000; // (default 1000; a test below keeps thousands)
        return o;
    }
    memory_inbox view_{roomy()};
    std::vector<durable_handler> done_;
};

// alice registered on a router whose store commits later; bob known to the store, offline.
struct alice_and_later_store {
    later_store store;
    router r{switchboard_test::with_inbox(store)};
    line_client alice{r};
    alice_and_later_store() {
        store.remember(*name::parse("bob"));
        alice.say("/register alice");
    }
};

} // namespace

TEST_CASE("durable answers: ok queued only once the commit is reported, in the order of the messages",
          "[inbox][durable]") {
    alice_and_later_store c;
    later_store& store = c.store;
    router& r = c.r;
    line_client& alice = c.alice;
    CHECK(alice.lines() == lines_t{"ok register alice"});
    alice.say("/msg bob one");
    alice.say("/msg bob two");
    alice.say("/msg bob three");
    CHECK(alice.lines().empty()); // decided, not committed
    CHECK(r.store_waits() == 3);
    store.complete();
    CHECK(alice.lines() == lines_t{"ok queued bob", "ok queued bob", "ok queued bob"});
    CHECK(r.store_waits() == 0);
    alice.say("/msg bob four"); // the waits start again at the front
    store.complete();
    CHECK(alice.lines() == lines_t{"ok queued bob"});
    CHECK(store.stored(*name::parse("bob")) == 4);
}

TEST_CASE("durable answers: completions run under a hold are answered when the hold ends", "[inbox][durable]") {
    alice_and_later_store c;
    later_store& store = c.store;
    line_client& alice = c.alice;
    (void)alice.lines();
    alice.say("/msg bob one");
    alice.say("/send c2 bob two");
    {
        const router::hold_guard batch = c.r.hold();
        store.complete();
        CHECK(alice.lines().empty()); // held, as every delivery a call causes
    }
    CHECK(alice.lines() == lines_t{"ok queued bob", "sent c2 queued"});
}

TEST_CASE("durable answers: thousands of waits in flight complete in order", "[inbox][durable]") {
    // New waits while more than 1024 finished ones lie at the front (the router then compacts
    // its list of waits): the answers still come in call order, each /send with its client id.
    alice_and_later_store c;
    later_store& store = c.store;
    router& r = c.r;
    line_client& alice = c.alice;
    (void)alice.lines();
    lines_t expected;
    int sent = 0;
    const auto send = [&](int count) {
        for (int i = 0; i < count; ++i, ++sent) {
            const std::string cid = "c" + std::to_string(sent);
            alice.say("/send " + cid + " bob m");
            expected.push_back("sent " + cid + " queued");
        }
    };
    send(1500);
    store.complete(1200); // 1200 finished at the front, 300 waiting
    CHECK(r.store_waits() == 300);
    send(700);            // compacted before the first of these
    CHECK(r.store_waits() == 1000);
    store.complete(500);
    send(1500);
    store.complete(1300);
    CHECK(r.store_waits() == 700);
    store.complete();
    CHECK(r.store_waits() == 0);
    CHECK(alice.lines() == expected);
}
