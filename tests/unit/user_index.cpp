// The router's user and room indexes (open addressing, backward-shift deletion) checked against a
// std::map model under random churn: every name finds exactly its owner, freed names are gone.
#include <switchboard/switchboard.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace switchboard;

TEST_CASE("user index: random register/close/find churn matches a std::map model", "[router][index]") {
    router r;
    std::vector<std::unique_ptr<in_memory_transport>> transports;
    std::map<std::string, session_id> model;
    std::vector<session_id> open;
    std::mt19937 rng(20261129);
    for (int step = 0; step < 60000; ++step) {
        const unsigned op = rng() % 3;
        const std::string n = "u" + std::to_string(rng() % 3000);
        if (op == 0 || open.empty()) {
            transports.push_back(std::make_unique<in_memory_transport>());
            const session_id s = r.open_session(*transports.back(), switchboard::protocol::line_event_encoder::instance());
            const status st = r.register_name(s, n);
            if (model.count(n)) {
                REQUIRE(st == status::name_taken);
            } else {
                REQUIRE(st == status::ok);
                model[n] = s;
            }
            open.push_back(s);
        } else if (op == 1) {
            const std::size_t i = rng() % open.size();
            const std::string held(r.name_of(open[i]));
            if (!held.empty()) model.erase(held);
            REQUIRE(r.close_session(open[i]) == status::ok);
            open[i] = open.back();
            open.pop_back();
        } else {
            const session_id found = r.find(n);
            const auto it = model.find(n);
            REQUIRE((it == model.end()) == !found);
            if (found) REQUIRE(found == it->second);
        }
    }
    REQUIRE(r.user_count() == model.size());
    for (const auto& [n, s] : model) REQUIRE(r.find(n) == s);
}

TEST_CASE("room index: random join/leave churn keeps room sizes and lookups right", "[router][index]") {
    constexpr int sessions = 64, rooms = 500;
    router_options options;
    options.max_rooms_per_session = rooms; // a session may end up in most rooms
    router r(options);
    std::vector<std::unique_ptr<in_memory_transport>> transports;
    std::vector<session_id> ids;
    for (int i = 0; i < sessions; ++i) {
        transports.push_back(std::make_unique<in_memory_transport>());
        ids.push_back(r.open_session(*transports.back(), switchboard::protocol::line_event_encoder::instance()));
        REQUIRE(r.register_name(ids.back(), "s" + std::to_string(i)) == status::ok);
    }
    std::map<std::string, std::vector<bool>> model;
    std::mt19937 rng(7);
    for (int step = 0; step < 40000; ++step) {
        const int who = static_cast<int>(rng() % sessions);
        const std::string room = "r" + std::to_string(rng() % rooms);
        auto& members = model[room];
        members.resize(sessions);
        if (members[who]) {
            REQUIRE(r.leave(ids[who], room) == status::ok);
            members[who] = false;
        } else {
            REQUIRE(r.join(ids[who], room) == status::ok);
            members[who] = true;
        }
    }
    std::size_t non_empty = 0;
    for (const auto& [room, members] : model) {
        std::size_t count = 0;
        for (bool m : members) count += m ? 1 : 0;
        non_empty += count ? 1 : 0;
        REQUIRE(r.room_size(*name::parse(room)) == count);
    }
    REQUIRE(r.room_count() == non_empty);
}
