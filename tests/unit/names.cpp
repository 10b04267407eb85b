// Names: validation bounds, character classes, ASCII folding, name::parse, equality and hashing.
#include <switchboard/names.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

using switchboard::equals_folded;
using switchboard::fold_ascii;
using switchboard::is_name_char;
using switchboard::is_valid_name;
using switchboard::max_name_length;
using switchboard::name;
using switchboard::name_hash;

namespace {
bool expected_name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}
} // namespace

TEST_CASE("names: length bounds 0, 1, 40 and 41 bytes", "[names]") {
    REQUIRE(max_name_length == 40);
    CHECK_FALSE(is_valid_name(""));
    CHECK(is_valid_name("a"));
    CHECK(is_valid_name(std::string(39, 'x')));
    CHECK(is_valid_name(std::string(40, 'x')));
    CHECK_FALSE(is_valid_name(std::string(41, 'x')));
    CHECK_FALSE(is_valid_name(std::string(1000, 'x')));

    CHECK_FALSE(name::parse("").has_value());
    REQUIRE(name::parse("Z").has_value());
    CHECK(name::parse("Z")->view() == "z");
    CHECK(name::parse("Z")->size() == 1);
    const std::string upper40(40, 'Q');
    REQUIRE(name::parse(upper40).has_value());
    CHECK(name::parse(upper40)->view() == std::string(40, 'q'));
    CHECK(name::parse(upper40)->size() == 40);
    CHECK_FALSE(name::parse(std::string(41, 'q')).has_value());
}

TEST_CASE("names: a 36-byte dashed UUID is a valid name, folded to lower case", "[names]") {
    const auto n = name::parse("550E8400-E29B-41D4-A716-446655440000");
    REQUIRE(n.has_value());
    CHECK(n->view() == "550e8400-e29b-41d4-a716-446655440000");
    CHECK(*n == *name::parse("550e8400-e29b-41d4-A716-446655440000"));
    CHECK_FALSE(*n == *name::parse("550e8400-e29b-41d4-a716-446655440001"));
    CHECK(n->hash() != name::parse("550e8400-e29b-41d4-a716-446655440001")->hash());
}

TEST_CASE("names: a forbidden byte at any position of a 40-byte name spoils it", "[names]") {
    for (std::size_t at = 0; at < max_name_length; ++at) {
        INFO("position " << at);
        std::string s(max_name_length, 'k');
        s[at] = '!';
        CHECK_FALSE(is_valid_name(s));
        CHECK_FALSE(name::parse(s).has_value());
        name out;
        CHECK_FALSE(name::parse(s, out));
        s[at] = 'K'; // and an allowed one is folded in place
        const auto n = name::parse(s);
        REQUIRE(n.has_value());
        CHECK(n->view() == std::string(max_name_length, 'k'));
    }
}

TEST_CASE("names: exactly [A-Za-z0-9_.-] are name bytes, checked over all 256 values", "[names]") {
    int allowed = 0;
    for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        INFO("byte " << b);
        CHECK(is_name_char(c) == expected_name_char(static_cast<unsigned char>(b)));
        const std::string one(1, c);
        CHECK(is_valid_name(one) == expected_name_char(static_cast<unsigned char>(b)));
        CHECK(name::parse(one).has_value() == expected_name_char(static_cast<unsigned char>(b)));
        // A forbidden byte anywhere (first, middle, last) of an otherwise valid name spoils it.
        if (!expected_name_char(static_cast<unsigned char>(b))) {
            CHECK_FALSE(is_valid_name(one + "abc"));
            CHECK_FALSE(is_valid_name("ab" + one + "c"));
            CHECK_FALSE(is_valid_name("abc" + one));
            CHECK_FALSE(is_valid_name(std::string(39, 'a') + one)); // 40 bytes, still invalid
            CHECK_FALSE(name::parse(std::string(39, 'a') + one).has_value());
        } else {
            ++allowed;
        }
    }
    CHECK(allowed == 26 + 26 + 10 + 3);
}

TEST_CASE("names: representative valid and invalid names", "[names]") {
    CHECK(is_valid_name("alice"));
    CHECK(is_valid_name("Alice_01"));
    CHECK(is_valid_name("a.b-c_d"));
    CHECK(is_valid_name("..."));
    CHECK(is_valid_name("-"));
    CHECK(is_valid_name("0"));
    CHECK_FALSE(is_valid_name("al ice"));
    CHECK_FALSE(is_valid_name(" alice"));
    CHECK_FALSE(is_valid_name("alice "));
    CHECK_FALSE(is_valid_name("alice\t"));
    CHECK_FALSE(is_valid_name("b@d"));
    CHECK_FALSE(is_valid_name("#room"));
    CHECK_FALSE(is_valid_name("a/b"));
    CHECK_FALSE(is_valid_name("caf\xC3\xA9"));         // UTF-8 e-acute
    CHECK_FALSE(is_valid_name(std::string("a\0b", 3))); // embedded NUL
    CHECK_FALSE(is_valid_name("a\r"));
    CHECK_FALSE(is_valid_name("a\n"));
}

TEST_CASE("names: fold_ascii lowercases A-Z only, checked over all 256 values", "[names]") {
    for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        const char expected = (b >= 'A' && b <= 'Z') ? static_cast<char>(b + 32) : c;
        INFO("byte " << b);
        CHECK(fold_ascii(c) == expected);
    }
    // Latin-1 / UTF-8 capitals are not folded (no locale).
    CHECK(fold_ascii(static_cast<char>(0xC9)) == static_cast<char>(0xC9));
}

TEST_CASE("names: equals_folded", "[names]") {
    CHECK(equals_folded("Alice", "aLICE"));
    CHECK(equals_folded("", ""));
    CHECK(equals_folded("A.B-C_9", "a.b-c_9"));
    CHECK_FALSE(equals_folded("alice", "alic"));
    CHECK_FALSE(equals_folded("alice", "alicf"));
    CHECK_FALSE(equals_folded("a", ""));
    // '@' (0x40) and '`' (0x60) differ by 0x20 like case pairs but are not letters.
    CHECK_FALSE(equals_folded("@", "`"));
    CHECK_FALSE(equals_folded("[", "{"));
    static_assert(equals_folded("MSG", "msg"), "constexpr");
    static_assert(is_valid_name("ok") && !is_valid_name(""), "constexpr");
}

TEST_CASE("names: name::parse folds and rejects", "[names]") {
    const auto n = name::parse("AlIcE.Smith-99_X");
    REQUIRE(n.has_value());
    CHECK(n->view() == "alice.smith-99_x");
    CHECK(n->size() == 16);
    CHECK_FALSE(n->empty());

    CHECK_FALSE(name::parse("al ice").has_value());
    CHECK_FALSE(name::parse("ALICE!").has_value());

    const name empty;
    CHECK(empty.empty());
    CHECK(empty.size() == 0);
    CHECK(empty.view().empty());
    CHECK(empty != *n);
}

TEST_CASE("names: equality, ordering and hash are consistent with folding", "[names]") {
    const name a = *name::parse("alice");
    const name a_upper = *name::parse("ALICE");
    const name a_mixed = *name::parse("aLiCe");
    const name b = *name::parse("alicf");
    const name prefix = *name::parse("alic");
    const name longer = *name::parse("alicee");

    CHECK(a == a_upper);
    CHECK(a == a_mixed);
    CHECK_FALSE(a != a_upper);
    CHECK(a != b);
    CHECK(a != prefix);
    CHECK(a != longer);

    CHECK(a.hash() == a_upper.hash());
    CHECK(a.hash() == a_mixed.hash());
    CHECK(name_hash{}(a) == name_hash{}(a_upper));
    CHECK(std::hash<name>{}(a) == std::hash<name>{}(a_mixed));
    CHECK(std::hash<name>{}(a) == static_cast<std::size_t>(a.hash()));
    CHECK(name_hash{}(a) == static_cast<std::size_t>(a.hash()));

    // Byte order of folded forms; shorter prefix first.
    CHECK(prefix < a);
    CHECK(a < longer);
    CHECK(a < b);
    CHECK_FALSE(a < a_upper);
    CHECK_FALSE(a_upper < a);
    CHECK(*name::parse("-x") < *name::parse(".x"));
    CHECK(*name::parse(".x") < *name::parse("0x"));
    CHECK(*name::parse("9x") < *name::parse("_x"));
    CHECK(*name::parse("_x") < *name::parse("ax"));
    CHECK(*name::parse("_x") < *name::parse("Zx"));           // 'Z' folds to 'z' (0x7A) > '_' (0x5F)
}

TEST_CASE("names: usable as unordered_set keys, case-insensitively", "[names]") {
    std::unordered_set<name> set;
    set.insert(*name::parse("Bob"));
    set.insert(*name::parse("BOB"));
    set.insert(*name::parse("bob"));
    set.insert(*name::parse("bob2"));
    CHECK(set.size() == 2);
    CHECK(set.count(*name::parse("bOb")) == 1);
    CHECK(set.count(*name::parse("bo")) == 0);

    // Names that differ only in one byte, in each word of the inline buffer, hash apart in practice
    // and compare unequal: a sanity check that every word is mixed into the hash.
    std::unordered_set<std::uint64_t> hashes;
    for (std::size_t pos = 0; pos < 40; ++pos) {
        std::string s(40, 'a');
        s[pos] = 'b';
        hashes.insert(name::parse(s)->hash());
    }
    hashes.insert(name::parse(std::string(40, 'a'))->hash());
    CHECK(hashes.size() == 41);
    // Same bytes, different length: "a" vs "aa" must differ (size is mixed in, tail is zero).
    CHECK(*name::parse("a") != *name::parse("aa"));
    CHECK(name::parse("a")->hash() != name::parse("aa")->hash());
}
