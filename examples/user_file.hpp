/// @file
/// @brief `tcp_chat`'s user file: user names that need a secret to register, stored as salted
/// PBKDF2-HMAC-SHA256 hashes (RFC 8018, section 5.2) computed and compared with OpenSSL's
/// libcrypto, never with code of our own. Used by examples/tcp_chat.cpp (`--users`,
/// `--hash-secret`) and its tests; copy it into your own server if its format suits you.
///
/// File format, one entry per line (blank lines and lines starting with `#` are skipped):
///
///     <user>:pbkdf2-sha256:<iterations>:<salt, hex>:<derived key, hex>
///
/// `<user>` is a switchboard name (folded on load); the salt is 16 random bytes and the key 32.
/// `tcp_chat --hash-secret <user>` reads a secret from standard input and prints such a line.
#pragma once

#include <switchboard/names.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tcp_chat {

/// @brief PBKDF2 iterations that `hash_line()` uses by default: about 60 ms per verification on
/// the 2-core test machine. OWASP's 2023 cheat sheet suggests 600,000 for PBKDF2-HMAC-SHA256; each
/// line stores its own count, so an operator may raise it, at the cost described in
/// docs/security.md (verification runs on the thread that holds the router).
inline constexpr std::uint32_t default_pbkdf2_iterations = 100000;

/// @brief The users of a user file, loaded once; read-only afterwards, so `verify()` may be
/// called from any thread.
class user_file {
public:
    /// @brief Loads `path`.
    /// @param error set to `<path>:<line>: <why>` when the file cannot be read or a line is bad.
    /// @return the users, or nothing on error.
    static std::optional<user_file> load(const std::string& path, std::string& error) {
        std::ifstream in(path);
        if (!in) {
            error = path + ": cannot open";
            return std::nullopt;
        }
        user_file f;
        std::string line;
        for (std::size_t number = 1; std::getline(in, line); ++number) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line[0] == '#') continue;
            const std::vector<std::string_view> fields = split(line, ':');
            entry e;
            std::optional<switchboard::name> user;
            if (fields.size() == 5) user = switchboard::name::parse(fields[0]);
            if (!user || fields[1] != "pbkdf2-sha256" || !parse_count(fields[2], e.iterations) ||
                !from_hex(fields[3], e.salt) || e.salt.empty() || !from_hex(fields[4], e.key) ||
                e.key.size() != key_bytes) {
                error = path + ":" + std::to_string(number) +
                        ": expected <user>:pbkdf2-sha256:<iterations>:<salt hex>:<32-byte key hex>";
                return std::nullopt;
            }
            f.users_[std::string(user->view())] = std::move(e);
        }
        return f;
    }

    /// @brief True when `user` (folded) is listed, i.e. needs a secret.
    [[nodiscard]] bool contains(const switchboard::name& user) const {
        return users_.find(std::string(user.view())) != users_.end();
    }

    /// @brief Number of users listed.
    [[nodiscard]] std::size_t size() const noexcept { return users_.size(); }

    /// @brief Calls `f(const switchboard::name&)` for each listed user (folded), in byte order of
    /// the names (`tcp_chat --offline` remembers them as known users of the inbox).
    template <class F>
    void for_each_user(F&& f) const {
        for (const auto& u : users_)
            if (const auto n = switchboard::name::parse(u.first)) f(*n);
    }

    /// @brief True when `user` is listed and `secret` derives its stored key. The keys are
    /// compared in constant time (`CRYPTO_memcmp`); a listed user always costs one full PBKDF2,
    /// whatever the secret.
    [[nodiscard]] bool verify(const switchboard::name& user, std::string_view secret) const {
        const auto it = users_.find(std::string(user.view()));
        if (it == users_.end()) return false;
        const entry& e = it->second;
        unsigned char derived[key_bytes];
        if (!derive(secret, e.salt, e.iterations, derived)) return false;
        return CRYPTO_memcmp(derived, e.key.data(), key_bytes) == 0;
    }

    /// @brief A user-file line for `user` and `secret`, with a fresh random salt
    /// (`RAND_bytes`).
    /// @return the line without a newline; empty when `user` is not a valid name or OpenSSL
    ///         failed.
    [[nodiscard]] static std::string hash_line(std::string_view user, std::string_view secret,
                                               std::uint32_t iterations = default_pbkdf2_iterations) {
        const auto n = switchboard::name::parse(user);
        std::vector<unsigned char> salt(16);
        unsigned char derived[key_bytes];
        if (!n || iterations == 0 || RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1 ||
            !derive(secret, salt, iterations, derived))
            return {};
        return std::string(n->view()) + ":pbkdf2-sha256:" + std::to_string(iterations) + ":" +
               to_hex(salt.data(), salt.size()) + ":" + to_hex(derived, key_bytes);
    }

private:
    static constexpr std::size_t key_bytes = 32;

    struct entry {
        std::uint32_t iterations = 0;
        std::vector<unsigned char> salt;
        std::vector<unsigned char> key;
    };

    static bool derive(std::string_view secret, const std::vector<unsigned char>& salt, std::uint32_t iterations,
                       unsigned char (&out)[key_bytes]) {
        if (iterations == 0 || iterations > 0x7fffffffu || secret.size() > 0x7fffffffu) return false;
        return PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()), salt.data(),
                                 static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                                 static_cast<int>(key_bytes), out) == 1;
    }

    static std::vector<std::string_view> split(std::string_view s, char sep) {
        std::vector<std::string_view> out;
        for (;;) {
            const std::size_t i = s.find(sep);
            out.push_back(s.substr(0, i));
            if (i == std::string_view::npos) return out;
            s.remove_prefix(i + 1);
        }
    }

    static bool parse_count(std::string_view s, std::uint32_t& out) {
        if (s.empty() || s.size() > 9) return false;
        std::uint32_t v = 0;
        for (const char c : s) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + static_cast<std::uint32_t>(c - '0');
        }
        out = v;
        return v > 0;
    }

    static int hex_digit(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    static bool from_hex(std::string_view s, std::vector<unsigned char>& out) {
        if (s.size() % 2 != 0) return false;
        out.clear();
        for (std::size_t i = 0; i < s.size(); i += 2) {
            const int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
            if (hi < 0 || lo < 0) return false;
            out.push_back(static_cast<unsigned char>(hi * 16 + lo));
        }
        return true;
    }

    static std::string to_hex(const unsigned char* p, std::size_t n) {
        static constexpr char digits[] = "0123456789abcdef";
        std::string out;
        out.reserve(n * 2);
        for (std::size_t i = 0; i < n; ++i) {
            out.push_back(digits[p[i] >> 4]);
            out.push_back(digits[p[i] & 15]);
        }
        return out;
    }

    std::map<std::string, entry> users_;
};

} // namespace tcp_chat
