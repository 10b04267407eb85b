// cluster_format.hpp: the layout nodes exchange, byte for byte, and decode_cluster_event()
// refusing what is not exactly one encoding (tests/fuzz/cluster_format_fuzz.cpp goes further).
#include <switchboard/cluster_format.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using switchboard::cluster_format;
using switchboard::decode_cluster_event;
using switchboard::event;
using switchboard::event_kind;
using switchboard::status;

TEST_CASE("cluster_format: every field, little-endian, length-prefixed", "[cluster]") {
    event e{event_kind::acked_message, "r", "bob", "hi"};
    e.seq = 0x0102030405060708u;
    e.last_seen = -1;
    e.code = status::name_taken;
    e.queued = true;
    const std::string bytes(cluster_format::instance().encode(e).view());
    const std::string expected = std::string("\x04\x02\x01", 3) + std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8) +
                                 std::string(8, '\xff') + std::string("\x01\0\0\0r", 5) +
                                 std::string("\x03\0\0\0bob", 7) + std::string("\x02\0\0\0hi", 6);
    CHECK(bytes == expected);
    event back;
    REQUIRE(decode_cluster_event(bytes, back));
    CHECK(back.kind == e.kind);
    CHECK(back.code == e.code);
    CHECK(back.queued);
    CHECK(back.seq == e.seq);
    CHECK(back.last_seen == -1);
    CHECK(back.room == "r");
    CHECK(back.user == "bob");
    CHECK(back.text == "hi");
}

TEST_CASE("cluster_format: decode refuses anything but exactly one encoding", "[cluster]") {
    event e{event_kind::register_outcome, {}, "alice", {}};
    e.code = status::cluster_unavailable;
    const std::string good(cluster_format::instance().encode(e).view());
    event out;
    CHECK(decode_cluster_event(good, out));
    CHECK(out.code == status::cluster_unavailable);
    for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(decode_cluster_event(good.substr(0, n), out));
    CHECK_FALSE(decode_cluster_event(good + "x", out));
    std::string bad = good;
    bad[0] = static_cast<char>(static_cast<unsigned char>(switchboard::detail::last_event_kind) + 1);
    CHECK_FALSE(decode_cluster_event(bad, out));
    bad = good;
    bad[1] = static_cast<char>(static_cast<unsigned char>(status::pending) + 1);
    CHECK_FALSE(decode_cluster_event(bad, out));
    bad = good;
    bad[2] = 2;
    CHECK_FALSE(decode_cluster_event(bad, out));
    bad = good;
    bad[19] = '\xff'; // the room's length far past the end
    bad[22] = '\xff';
    CHECK_FALSE(decode_cluster_event(bad, out));
    CHECK(out.user == "alice"); // untouched by the refusals
}
