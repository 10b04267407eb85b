/// @file
/// @brief The server side of the WebSocket opening handshake (RFC 6455 section 4.2): checks a
/// parsed upgrade request (protocol/http_request.hpp) and builds the `101 Switching Protocols`
/// reply or the HTTP refusal to send instead. Sans-I/O: no socket, no Asio; SHA-1 and base64 come
/// from OpenSSL's libcrypto (target `switchboard::websocket`).
///
/// The WebSocket protocol policy calls it from `handshake()` (protocol/policy.hpp): parse the
/// head with `http_request_parser`; on a parse error send `http_error_response()` and close; on
/// `complete` call `validate_upgrade()`, send its `response`, and either open the session (the
/// bytes after the head are the first frames) or close.
///
/// No extension is negotiated: `Sec-WebSocket-Extensions` is ignored and never answered (RFC
/// 6455 section 9.1 lets the server accept none), so permessage-deflate (RFC 7692) is off. Its
/// per-connection compression state costs tens of KiB of memory per connection, and compressing
/// attacker-influenced text next to secrets is the CRIME/BREACH pattern; chat lines are short.
#pragma once

#include "../names.hpp"
#include "../payload.hpp"
#include "../protocol/http_request.hpp"
#include "../protocol/http_response.hpp"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::websocket {

/// @brief The GUID a server appends to the client's key before hashing (RFC 6455 section 1.3).
inline constexpr std::string_view handshake_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// @brief The only protocol version this server speaks (RFC 6455 section 4.1, item 9).
inline constexpr std::string_view websocket_version = "13";

/// @brief The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455 section
/// 4.2.2, item 5.4): base64(SHA-1(key + GUID)), 28 characters.
/// @param key the key exactly as sent (the header value, OWS already trimmed); any bytes.
/// @return the accept value (`dGhlIHNhbXBsZSBub25jZQ==` gives `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`);
///         empty when libcrypto cannot compute SHA-1 (e.g. a FIPS provider that forbids it).
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (libcrypto's one-shot `EVP_Digest`, no shared state).
[[nodiscard]] inline std::string websocket_accept_key(std::string_view key) {
    std::string input;
    input.reserve(key.size() + handshake_guid.size());
    input.append(key).append(handshake_guid);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    if (EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr) != 1 ||
        digest_size != 20)
        return {};
    unsigned char encoded[32]; // 4 * ceil(20 / 3) = 28 characters and a NUL
    const int n = EVP_EncodeBlock(encoded, digest, 20);
    return n == 28 ? std::string(reinterpret_cast<const char*>(encoded), 28) : std::string();
}

/// @brief True when `key` is the base64 (RFC 4648 section 4, with padding) of exactly 16 bytes,
/// as RFC 6455 section 4.1 item 7 requires of `Sec-WebSocket-Key`: 22 alphabet characters then
/// `==`, the 22nd character carrying zero padding bits (canonical form: `A`, `Q`, `g` or `w`;
/// RFC 4648 section 3.5), which every client's encoder produces.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool is_valid_websocket_key(std::string_view key) noexcept {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i) {
        const char c = key[i];
        const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                              c == '+' || c == '/';
        if (!alphabet) return false;
    }
    const char last = key[21];
    return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

/// @brief What a server accepts as a WebSocket upgrade. Server-wide; read only.
struct upgrade_options {
    /// @brief The request path that upgrades (compared byte for byte, query ignored). Empty:
    /// any path. Another path is refused with 404.
    std::string path = "/ws";

    /// @brief The `Origin` values allowed (serialised origins such as `https://chat.example`,
    /// compared ASCII case-insensitively, RFC 6454 section 6.2). Empty: any origin.
    ///
    /// Browsers always send `Origin` on a WebSocket request and let any page open a WebSocket
    /// to any site, with the user's cookies: a server that authenticates by cookie must list
    /// its own origins here, or a hostile page can act as the user (cross-site WebSocket
    /// hijacking; RFC 6455 section 10.2). An origin not listed is refused with 403.
    std::vector<std::string> allowed_origins;

    /// @brief Whether a request without `Origin` is accepted. Default true: non-browser
    /// clients (command-line tools, bots, other servers) do not send one, and since every
    /// browser does, such a request cannot come from a hostile page. False refuses it with 403.
    bool allow_missing_origin = true;

    /// @brief The subprotocols (the wire formats) this server speaks, most preferred first.
    /// When the client offers some, the first of these that it offers is selected and named
    /// in the 101 (matched byte for byte: RFC 6455 section 4.1 lets the client fail the
    /// connection unless the reply names exactly one it sent).
    std::vector<std::string> subprotocols = {"switchboard.json", "switchboard.line"};

    /// @brief The format used with a client that offers no subprotocol. RFC 6455 section 4.2.2
    /// forbids naming one in the reply then, so the server falls back to this without telling
    /// the client. Empty (the default): the first of `subprotocols`.
    std::string default_subprotocol;
};

/// @brief Why `validate_upgrade()` refused a request. `to_string()` spells each in lowercase
/// words joined by `-`; `http_status_of()` gives the status of the refusal.
enum class upgrade_refusal : std::uint8_t {
    none,                    ///< Accepted (101).
    method_not_get,          ///< 400: the method is not `GET` (RFC 6455 4.1 item 2).
    http_version_too_old,    ///< 400: below HTTP/1.1 (RFC 6455 4.1 item 2).
    wrong_path,              ///< 404: not `upgrade_options::path`.
    invalid_host,            ///< 400: no Host, more than one, an empty or malformed one (RFC
                             ///< 6455 4.1 item 4, RFC 9112 3.2).
    unexpected_body,         ///< 400: Transfer-Encoding, or a Content-Length other than 0: the
                             ///< bytes after the head would be taken for frames.
    upgrade_not_websocket,   ///< 400: `Upgrade` does not list `websocket` (RFC 6455 4.1 item 5).
    connection_not_upgrade,  ///< 400: `Connection` does not list `upgrade` (RFC 6455 4.1 item 6).
    unsupported_version,     ///< 426 with `Sec-WebSocket-Version: 13`: the version is missing,
                             ///< repeated or not 13 (RFC 6455 4.2.2 item 4, 4.4).
    invalid_key,             ///< 400: `Sec-WebSocket-Key` missing, repeated or not the base64 of
                             ///< 16 bytes (RFC 6455 4.1 item 7).
    origin_not_allowed,      ///< 403: `Origin` not in `allowed_origins`, missing while
                             ///< `allow_missing_origin` is false, or repeated (RFC 6455 4.2.2).
    no_common_subprotocol,   ///< 400: the client offers subprotocols, none of ours. RFC 6455
                             ///< lets the server then reply without one, but browsers fail such a
                             ///< connection right after the 101 (WHATWG WebSocket "establish a
                             ///< connection"), so a refusal that says why is clearer.
    digest_unavailable,      ///< 500: libcrypto could not compute SHA-1.
};

/// @brief The refusal's name, lowercase words joined by `-` (`""` for `none`).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(upgrade_refusal r) noexcept {
    switch (r) {
    case upgrade_refusal::none: return "";
    case upgrade_refusal::method_not_get: return "method-not-get";
    case upgrade_refusal::http_version_too_old: return "http-version-too-old";
    case upgrade_refusal::wrong_path: return "wrong-path";
    case upgrade_refusal::invalid_host: return "invalid-host";
    case upgrade_refusal::unexpected_body: return "unexpected-body";
    case upgrade_refusal::upgrade_not_websocket: return "upgrade-not-websocket";
    case upgrade_refusal::connection_not_upgrade: return "connection-not-upgrade";
    case upgrade_refusal::unsupported_version: return "unsupported-version";
    case upgrade_refusal::invalid_key: return "invalid-key";
    case upgrade_refusal::origin_not_allowed: return "origin-not-allowed";
    case upgrade_refusal::no_common_subprotocol: return "no-common-subprotocol";
    case upgrade_refusal::digest_unavailable: return "digest-unavailable";
    }
    return "";
}

/// @brief The HTTP status of the reply: 101 for `none`, else 400, 403, 404, 426 or 500.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr int http_status_of(upgrade_refusal r) noexcept {
    switch (r) {
    case upgrade_refusal::none: return 101;
    case upgrade_refusal::wrong_path: return 404;
    case upgrade_refusal::unsupported_version: return 426;
    case upgrade_refusal::origin_not_allowed: return 403;
    case upgrade_refusal::digest_unavailable: return 500;
    default: return 400;
    }
}

/// @brief The verdict on an upgrade request.
struct upgrade_result {
    /// @brief No subprotocol index (the default format is not in `upgrade_options::subprotocols`,
    /// or the request was refused).
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    upgrade_refusal refusal = upgrade_refusal::none; ///< `none`: accepted.
    int status = 0;   ///< 101, or the status of the refusal (`http_status_of(refusal)`).
    payload response; ///< The bytes to send: the 101 reply (then frames follow), or a complete
                      ///< refusal that closes the connection (`text/plain` body naming `refusal`).
    std::string_view subprotocol;         ///< Accepted: the format to speak (a view into
                                          ///< `upgrade_options`); empty when the server has none.
    std::size_t subprotocol_index = npos; ///< Accepted: its index in `upgrade_options::subprotocols`.
    bool subprotocol_negotiated = false;  ///< The 101 names `subprotocol` (the client offered it);
                                          ///< false: the client offered none, this is the default.

    /// @brief True when the upgrade was accepted.
    [[nodiscard]] bool accepted() const noexcept { return refusal == upgrade_refusal::none; }
};

namespace detail {

// The refusal reply: text/plain naming the reason; a 426 also says which version to use and
// which protocol to upgrade to (RFC 6455 4.4, RFC 9110 15.5.22 and 7.8).
inline upgrade_result refuse(upgrade_refusal r) {
    upgrade_result out;
    out.refusal = r;
    out.status = http_status_of(r);
    if (r == upgrade_refusal::unsupported_version) {
        out.response = protocol::detail::http_message(
            426, {{"Content-Type", "text/plain; charset=utf-8"}},
            {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", websocket_version}}, true, "Upgrade, close",
            {"426 Upgrade Required: ", to_string(r), "\n"});
    } else {
        out.response = protocol::http_text_response(out.status, to_string(r));
    }
    return out;
}

// Exactly one `name` line, whose value is returned in `value`.
inline bool single_header(const protocol::http_request& request, std::string_view name, std::string_view& value) {
    if (request.count(name) != 1) return false;
    value = *request.header(name);
    return true;
}

} // namespace detail

/// @brief Decides on a WebSocket upgrade request and builds the reply (RFC 6455 section 4.2).
///
/// Checks, in this order, each refused with the status of its `upgrade_refusal`: GET;
/// HTTP/1.1 or later; the path; one valid, non-empty Host; no body; `Upgrade` lists `websocket`
/// and `Connection` lists `upgrade` (tokens, ASCII case-insensitive, any line of either);
/// `Sec-WebSocket-Version: 13` (else 426); one valid `Sec-WebSocket-Key`; `Origin`; the
/// subprotocol (see `upgrade_options`). `Sec-WebSocket-Extensions` is ignored (file comment).
/// @param request a head `parse_http_request()` or `http_request_parser` returned `complete`
///        for; its views must still be valid.
/// @param options what to accept; the result's `subprotocol` is a view into it.
/// @return accepted: `status` 101 and `response` = `HTTP/1.1 101 Switching Protocols` with
///         `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` and, when the
///         client offered a subprotocol we speak, `Sec-WebSocket-Protocol`. Refused: the reason,
///         its status and a complete `Connection: close` response to send before closing.
/// @throws std::bad_alloc when memory runs out (building the reply).
/// @note Thread-safe (pure function of its arguments; libcrypto's one-shot digest).
[[nodiscard]] inline upgrade_result validate_upgrade(const protocol::http_request& request,
                                                     const upgrade_options& options) {
    using R = upgrade_refusal;
    if (request.method != "GET") return detail::refuse(R::method_not_get);
    if (request.version_major != 1 || request.version_minor < 1) return detail::refuse(R::http_version_too_old);
    if (!options.path.empty() && request.path != options.path) return detail::refuse(R::wrong_path);
    std::string_view value;
    if (!detail::single_header(request, "Host", value) || value.empty() || !protocol::is_valid_host(value))
        return detail::refuse(R::invalid_host);
    for (const std::string_view length : request.values("Content-Length"))
        if (length != "0") return detail::refuse(R::unexpected_body);
    if (request.count("Transfer-Encoding") != 0) return detail::refuse(R::unexpected_body);
    if (!request.has_token("Upgrade", "websocket")) return detail::refuse(R::upgrade_not_websocket);
    if (!request.has_token("Connection", "upgrade")) return detail::refuse(R::connection_not_upgrade);
    if (!detail::single_header(request, "Sec-WebSocket-Version", value) || value != websocket_version)
        return detail::refuse(R::unsupported_version);
    std::string_view key;
    if (!detail::single_header(request, "Sec-WebSocket-Key", key) || !is_valid_websocket_key(key))
        return detail::refuse(R::invalid_key);

    const std::size_t origins = request.count("Origin");
    if (origins > 1 || (origins == 0 && !options.allow_missing_origin)) return detail::refuse(R::origin_not_allowed);
    if (origins == 1 && !options.allowed_origins.empty()) {
        const std::string_view origin = *request.header("Origin");
        bool listed = false;
        for (const std::string& allowed : options.allowed_origins) listed = listed || equals_folded(origin, allowed);
        if (!listed) return detail::refuse(R::origin_not_allowed);
    }

    upgrade_result out;
    bool offered = false; // any non-empty element in any Sec-WebSocket-Protocol line
    for (const std::string_view list : request.values("Sec-WebSocket-Protocol"))
        offered = offered || protocol::any_list_element(list, [](std::string_view) { return true; });
    const auto& ours = options.subprotocols;
    if (offered) {
        for (std::size_t i = 0; i < ours.size() && !out.subprotocol_negotiated; ++i) {
            for (const std::string_view list : request.values("Sec-WebSocket-Protocol")) {
                const std::string_view want = ours[i];
                if (protocol::any_list_element(list, [want](std::string_view e) { return e == want; })) {
                    out.subprotocol = ours[i];
                    out.subprotocol_index = i;
                    out.subprotocol_negotiated = true;
                    break;
                }
            }
        }
        if (!out.subprotocol_negotiated) return detail::refuse(R::no_common_subprotocol);
    } else {
        out.subprotocol = !options.default_subprotocol.empty() ? std::string_view(options.default_subprotocol)
                          : ours.empty()                       ? std::string_view()
                                                               : std::string_view(ours.front());
        for (std::size_t i = 0; i < ours.size() && out.subprotocol_index == upgrade_result::npos; ++i)
            if (ours[i] == out.subprotocol) out.subprotocol_index = i;
    }

    const std::string accept = websocket_accept_key(key);
    if (accept.empty()) return detail::refuse(R::digest_unavailable);
    out.status = 101;
    out.response = protocol::detail::http_message(
        101,
        {{"Upgrade", "websocket"},
         {"Connection", "Upgrade"},
         {"Sec-WebSocket-Accept", accept},
         {out.subprotocol_negotiated ? "Sec-WebSocket-Protocol" : "", out.subprotocol}},
        {}, false, {}, {});
    return out;
}

/// @brief Deleted: the result's `subprotocol` would be a view into a destroyed temporary. Keep
/// the server's `upgrade_options` alive (it is server-wide state) and pass it by reference.
upgrade_result validate_upgrade(const protocol::http_request& request, const upgrade_options&& options) = delete;

} // namespace switchboard::websocket
