/// @file
/// @brief A strict, bounded HTTP/1.1 request-head parser, sans-I/O (RFC 9112 sections 2-5 for the
/// syntax, RFC 9110 sections 5.5-5.6 for field values, tokens and lists). Standard library only.
///
/// It reads the request line and the header fields of one request from the bytes received so far
/// and answers, picohttpparser style: `partial` (give me more), `complete` (with the length of
/// the head: the bytes after it belong to whatever comes next, a body or WebSocket frames), or an
/// error with the HTTP status to answer (400, 414, 431, 505). The results are views into the
/// caller's buffer, kept in a fixed-capacity array: the parser never allocates.
///
/// - `parse_http_request()` parses a buffer from its start (one call, no state).
/// - `http_request_parser` does the same for a buffer that grows between calls, looking at each
///   byte once while the head is incomplete (a head trickled in one byte per read costs linear,
///   not quadratic, work), and gives the same result as `parse_http_request()` on the same bytes.
/// - `http_request` is the parsed head: method, target (path and query split), version, headers,
///   with case-insensitive lookup, repeated headers and comma-separated token lists.
///
/// Choices where the RFCs leave one (docs/security.md): a bare LF or a bare CR is refused rather
/// than accepted as a line ending (RFC 9112 section 2.2 allows either; refusing leaves no room
/// for two parsers on the path to disagree where a line ends, which is how requests are
/// smuggled), empty lines before the request line are skipped (RFC 9112 section 2.2 SHOULD),
/// obs-fold is refused (section 5.2), and a field value may hold no control byte but HTAB (RFC
/// 9110 section 5.5 requires refusing NUL, CR and LF and allows refusing the others).
#pragma once

#include "../config.hpp"
#include "../names.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>

namespace switchboard::protocol {

/// @brief The bounds of one request head. Every one is checked while bytes arrive, so an
/// oversized head is refused as soon as it passes the bound, not when it ends.
struct http_request_options {
    /// @brief Longest head in bytes: empty lines before the request line, the request line, the
    /// header lines and the final empty line, CRLFs included. A head of exactly this size is
    /// accepted; bytes beyond it are never read. A buffer of this size holding no complete head
    /// is `head_too_large` (431). 0 refuses every request.
    std::size_t max_head_bytes = 8192;
    /// @brief Most header lines (each line counts, repeated names too); one more is
    /// `too_many_headers` (431). Values above `http_request::capacity` act as the capacity.
    std::size_t max_headers = 64;
    /// @brief Longest request-target in bytes (path and query); one more is `uri_too_long` (414).
    std::size_t max_target = 2048;
    /// @brief Enforce RFC 9112 section 3.2: an HTTP/1.1 request without a Host header, with more
    /// than one, or with a Host value that is not `uri-host [":" port]` is a 400.
    bool require_host = true;
};

/// @brief What the parser made of the bytes so far.
enum class http_parse_status : std::uint8_t {
    partial,  ///< No error yet, the head is not complete: call again with more bytes.
    complete, ///< The head is complete and valid; `http_parse_result::consumed` is its length.
    error,    ///< The bytes cannot start a valid head: answer `http_parse_result::http_status()`
              ///< and close.
};

/// @brief Why a head was refused. `to_string()` spells each one in lowercase words joined by
/// `-`; `http_status_of()` maps it to the status to answer.
enum class http_parse_error : std::uint8_t {
    none,                    ///< No error.
    invalid_line_ending,     ///< 400: a bare LF or a CR not followed by LF (RFC 9112 2.2).
    invalid_request_line,    ///< 400: not `method SP target SP version CRLF` (empty method,
                             ///< empty target, a line ending too early; RFC 9112 3).
    invalid_method,          ///< 400: a method byte that is not a token character (RFC 9110 9.1).
    invalid_target,          ///< 400: a target byte outside VCHAR or `#`, or a target that is
                             ///< none of the four forms (RFC 9112 3.2).
    uri_too_long,            ///< 414: the target is longer than `max_target` (RFC 9112 3).
    invalid_version,         ///< 400: not `HTTP/` DIGIT `.` DIGIT (RFC 9112 2.3).
    unsupported_version,     ///< 505: a major version other than 1 (RFC 9110 15.6.6).
    invalid_field_name,      ///< 400: an empty field name or a non-token byte in it (RFC 9110 5.1).
    whitespace_before_colon, ///< 400: whitespace between a field name and its colon (RFC 9112 5.1).
    missing_colon,           ///< 400: a header line that ends before its colon.
    obsolete_line_folding,   ///< 400: a header line starting with SP or HTAB (obs-fold, RFC 9112
                             ///< 5.2; or whitespace right after the request line, RFC 9112 2.2).
    invalid_field_value,     ///< 400: a control byte other than HTAB in a value (RFC 9110 5.5).
    missing_host,            ///< 400: an HTTP/1.1 request without Host (`require_host`).
    duplicate_host,          ///< 400: more than one Host line (`require_host`).
    invalid_host,            ///< 400: a Host value that is not `uri-host [":" port]` (`require_host`).
    head_too_large,          ///< 431: no complete head within `max_head_bytes`.
    too_many_headers,        ///< 431: more than `max_headers` header lines.
};

/// @brief The error's name, lowercase words joined by `-` (`"invalid-line-ending"`, ...; `""`
/// for `none`), fit for a log line or a `text/plain` body.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(http_parse_error e) noexcept {
    switch (e) {
    case http_parse_error::none: return "";
    case http_parse_error::invalid_line_ending: return "invalid-line-ending";
    case http_parse_error::invalid_request_line: return "invalid-request-line";
    case http_parse_error::invalid_method: return "invalid-method";
    case http_parse_error::invalid_target: return "invalid-target";
    case http_parse_error::uri_too_long: return "uri-too-long";
    case http_parse_error::invalid_version: return "invalid-version";
    case http_parse_error::unsupported_version: return "unsupported-version";
    case http_parse_error::invalid_field_name: return "invalid-field-name";
    case http_parse_error::whitespace_before_colon: return "whitespace-before-colon";
    case http_parse_error::missing_colon: return "missing-colon";
    case http_parse_error::obsolete_line_folding: return "obsolete-line-folding";
    case http_parse_error::invalid_field_value: return "invalid-field-value";
    case http_parse_error::missing_host: return "missing-host";
    case http_parse_error::duplicate_host: return "duplicate-host";
    case http_parse_error::invalid_host: return "invalid-host";
    case http_parse_error::head_too_large: return "head-too-large";
    case http_parse_error::too_many_headers: return "too-many-headers";
    }
    return "";
}

/// @brief The HTTP status code to answer for `e`: 400, 414, 431 or 505 (0 for `none`).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr int http_status_of(http_parse_error e) noexcept {
    switch (e) {
    case http_parse_error::none: return 0;
    case http_parse_error::uri_too_long: return 414;
    case http_parse_error::unsupported_version: return 505;
    case http_parse_error::head_too_large:
    case http_parse_error::too_many_headers: return 431;
    default: return 400;
    }
}

/// @brief The outcome of one parse call.
struct http_parse_result {
    http_parse_status status = http_parse_status::partial; ///< See `http_parse_status`.
    http_parse_error error = http_parse_error::none;       ///< With `error`: why; else `none`.
    std::size_t consumed = 0; ///< With `complete`: bytes of the head, CRLFCRLF included (at most
                              ///< `max_head_bytes`); the rest of the buffer is not the head's.
                              ///< 0 otherwise.

    /// @brief The status code to answer: `http_status_of(error)` (0 unless `error`).
    [[nodiscard]] constexpr int http_status() const noexcept { return http_status_of(error); }
};

/// @brief Which of the four request-target forms of RFC 9112 section 3.2 the target has.
enum class http_target_form : std::uint8_t {
    origin,    ///< `/path?query`: what browsers and curl send to a server.
    absolute,  ///< `scheme://authority/path?query` (to a proxy; servers must accept it, 3.2.2).
    authority, ///< `host:port`, with CONNECT only.
    asterisk,  ///< `*`, with OPTIONS only.
};

/// @brief One header line: the name as sent (compare it case-insensitively) and the value
/// without its leading and trailing OWS. Views into the parsed buffer.
struct http_header {
    std::string_view name;  ///< 1 or more token characters.
    std::string_view value; ///< Possibly empty; no control byte but HTAB.
};

/// @brief Calls `pred(element)` for each non-empty element of a comma-separated list (RFC 9110
/// section 5.6.1: `#element`, OWS around commas, empty elements ignored), in order, until it
/// returns true.
/// @param list a field value such as `keep-alive, Upgrade`. Quoted strings are not understood
///        (none of Connection, Upgrade and Sec-WebSocket-Protocol uses them).
/// @param pred `bool(std::string_view element)`; the element has no surrounding OWS.
/// @return true when `pred` returned true for an element.
/// @note Thread-safe (pure function). Never allocates.
template <class Pred>
[[nodiscard]] bool any_list_element(std::string_view list, Pred&& pred) {
    std::size_t pos = 0;
    while (pos <= list.size()) {
        std::size_t end = list.find(',', pos);
        if (end == std::string_view::npos) end = list.size();
        std::size_t b = pos, e = end;
        while (b < e && (list[b] == ' ' || list[b] == '\t')) ++b;
        while (e > b && (list[e - 1] == ' ' || list[e - 1] == '\t')) --e;
        if (e > b && pred(list.substr(b, e - b))) return true;
        pos = end + 1;
    }
    return false;
}

/// @brief True when the comma-separated `list` has an element equal to `token` ignoring ASCII
/// case (`Connection: keep-alive, Upgrade` contains `upgrade`).
/// @note Thread-safe (pure function). Never allocates.
[[nodiscard]] inline bool list_contains_token(std::string_view list, std::string_view token) noexcept {
    return any_list_element(list, [token](std::string_view e) { return equals_folded(e, token); });
}

namespace detail {

// Byte classes of RFC 9110 and RFC 3986, one table lookup each.
struct http_char_classes {
    bool tchar[256] = {};  // token characters (RFC 9110 5.6.2)
    bool target[256] = {}; // request-target bytes: VCHAR but '#' (no fragment, RFC 9112 3.2)
    bool value[256] = {};  // field-value bytes: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5)
    bool reg_name[256] = {}; // host bytes: unreserved, sub-delims, '%' (RFC 3986 3.2.2)

    constexpr http_char_classes() noexcept {
        for (int c = 0; c < 256; ++c) {
            const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            tchar[c] = alnum || is_one_of(c, "!#$%&'*+-.^_`|~");
            target[c] = c >= 0x21 && c <= 0x7E && c != '#';
            value[c] = c == '\t' || (c >= 0x20 && c != 0x7F);
            reg_name[c] = alnum || is_one_of(c, "-._~!$&'()*+,;=%");
        }
    }

private:
    static constexpr bool is_one_of(int c, const char* set) noexcept {
        for (; *set; ++set)
            if (c == static_cast<unsigned char>(*set)) return true;
        return false;
    }
};

inline constexpr http_char_classes http_chars{};

[[nodiscard]] constexpr bool is_tchar(unsigned char c) noexcept { return http_chars.tchar[c]; }
[[nodiscard]] constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

class http_head_scanner;

} // namespace detail

/// @brief True when `host` is a valid Host field value: `uri-host [":" port]` (RFC 9112 section
/// 3.2, RFC 3986 section 3.2.2): an IP literal in brackets, or a reg-name / IPv4 address of
/// unreserved, sub-delims and `%` bytes, optionally followed by `:` and at most 5 digits. The
/// empty value is valid (RFC 9112 3.2 allows it when the target has no authority).
/// @note Thread-safe (pure function).
[[nodiscard]] inline bool is_valid_host(std::string_view host) noexcept {
    std::size_t i = 0;
    if (!host.empty() && host[0] == '[') {
        const std::size_t close = host.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (std::size_t k = 1; k < close; ++k) {
            const auto c = static_cast<unsigned char>(host[k]);
            if (!detail::http_chars.reg_name[c] && c != ':') return false;
        }
        i = close + 1;
    } else {
        while (i < host.size() && detail::http_chars.reg_name[static_cast<unsigned char>(host[i])]) ++i;
    }
    if (i == host.size()) return true;
    if (host[i] != ':' || host.size() - i - 1 > 5) return false;
    for (++i; i < host.size(); ++i)
        if (!detail::is_digit(static_cast<unsigned char>(host[i]))) return false;
    return true;
}

/// @brief A parsed request head: views into the buffer that was parsed, valid while its bytes
/// are; headers in a fixed-capacity array (no allocation). Filled by `parse_http_request()` and
/// `http_request_parser` when they return `complete`; its contents are meaningless otherwise.
///
/// Thread safety: none for writing; concurrent reads of a filled object are safe.
class http_request {
public:
    /// @brief The most headers one request can hold (`http_request_options::max_headers` is
    /// capped by it). 128 headers of two views each: 4 KiB, meant to live on the stack.
    static constexpr std::size_t capacity = 128;

    std::string_view method;  ///< The method as sent (case-sensitive, RFC 9110 9.1): `GET`, ...
    std::string_view target;  ///< The whole request-target as sent.
    std::string_view path;    ///< origin / absolute form: the path (before `?`); for an absolute
                              ///< target without a path, empty (meaning `/`); else empty.
    std::string_view query;   ///< The part after the first `?`, without it (possibly empty).
    std::string_view version; ///< `HTTP/1.1`, `HTTP/1.0`, ...
    int version_major = 0;    ///< 1 (any other major version is refused with 505).
    int version_minor = 0;    ///< 0 to 9; the WebSocket upgrade needs 1 or more.
    http_target_form form = http_target_form::origin; ///< Which form `target` has.

    /// @brief Number of header lines, in the order received.
    [[nodiscard]] std::size_t header_count() const noexcept { return count_; }
    /// @brief The header lines, in the order received (a range: `for (auto& h : r.headers())`).
    [[nodiscard]] const http_header* begin() const noexcept { return headers_.data(); }
    /// @brief End of the header lines.
    [[nodiscard]] const http_header* end() const noexcept { return headers_.data() + count_; }

    /// @brief The value of the first header named `name` (ASCII case-insensitive), or nothing.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
        for (const http_header& h : *this)
            if (equals_folded(h.name, name)) return h.value;
        return std::nullopt;
    }

    /// @brief Number of header lines named `name` (ASCII case-insensitive).
    [[nodiscard]] std::size_t count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (const http_header& h : *this)
            if (equals_folded(h.name, name)) ++n;
        return n;
    }

    /// @brief The values of every header line named `name`, in order: a forward range of
    /// `std::string_view` (a repeated header such as `Sec-WebSocket-Protocol` may be sent as
    /// several lines, equivalent to one line with the values joined by commas, RFC 9110 5.3).
    class values_range {
    public:
        /// @brief Iterates over the values of the matching lines.
        class iterator {
        public:
            using iterator_category = std::forward_iterator_tag; ///< Forward only.
            using value_type = std::string_view;                 ///< A field value.
            using difference_type = std::ptrdiff_t;              ///< Distance between lines.
            using pointer = const std::string_view*;             ///< Pointer to a value.
            using reference = const std::string_view&;           ///< A value.
            /// @brief The current value.
            reference operator*() const noexcept { return at_->value; }
            /// @brief Moves to the next matching line.
            iterator& operator++() noexcept {
                at_ = next(at_ + 1, end_, name_);
                return *this;
            }
            /// @brief Same position.
            friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.at_ == b.at_; }
            /// @brief Different position.
            friend bool operator!=(const iterator& a, const iterator& b) noexcept { return a.at_ != b.at_; }

        private:
            friend class values_range;
            iterator(const http_header* at, const http_header* end, std::string_view name) noexcept
                : at_(next(at, end, name)), end_(end), name_(name) {}
            static const http_header* next(const http_header* p, const http_header* end, std::string_view name) noexcept {
                while (p != end && !equals_folded(p->name, name)) ++p;
                return p;
            }
            const http_header* at_;
            const http_header* end_;
            std::string_view name_;
        };
        /// @brief The first matching line.
        [[nodiscard]] iterator begin() const noexcept { return {first_, last_, name_}; }
        /// @brief Past the last line.
        [[nodiscard]] iterator end() const noexcept { return {last_, last_, name_}; }

    private:
        friend class http_request;
        values_range(const http_header* first, const http_header* last, std::string_view name) noexcept
            : first_(first), last_(last), name_(name) {}
        const http_header* first_;
        const http_header* last_;
        std::string_view name_;
    };

    /// @brief Every value of the header lines named `name` (ASCII case-insensitive), in order.
    /// @note The range refers to this object and to `name`'s bytes.
    [[nodiscard]] values_range values(std::string_view name) const noexcept { return {begin(), end(), name}; }

    /// @brief True when a header line named `name` holds `token` in its comma-separated list,
    /// ASCII case-insensitively, across all lines of that name (`has_token("Connection",
    /// "upgrade")`).
    [[nodiscard]] bool has_token(std::string_view name, std::string_view token) const noexcept {
        for (const std::string_view v : values(name))
            if (list_contains_token(v, token)) return true;
        return false;
    }

private:
    friend class detail::http_head_scanner;
    std::array<http_header, capacity> headers_{};
    std::size_t count_ = 0;
};

namespace detail {

// The head as a byte-driven state machine: it can stop at any byte and go on from there when
// the buffer has grown, so each byte is examined once. Positions are offsets into the buffer
// (which may move between calls; its bytes may not change). With `out`, each line is recorded
// as it ends; the incremental parser passes none and records in one pass at the end.
class http_head_scanner {
public:
    [[nodiscard]] http_parse_result run(std::string_view bytes, const http_request_options& o,
                                        http_request* out) noexcept {
        if (st_ == state::done || st_ == state::failed) return result_;
        const std::size_t limit = bytes.size() < o.max_head_bytes ? bytes.size() : o.max_head_bytes;
        if (pos_ > limit) { // the buffer shrank: a caller bug
            SWITCHBOARD_ASSERT(false, "http_request_parser: the buffer must only grow between calls");
            return result_;
        }
        const std::size_t max_fields = o.max_headers < http_request::capacity ? o.max_headers : http_request::capacity;
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
        using E = http_parse_error;
        for (std::size_t i = pos_; i < limit; ++i) {
            const unsigned char c = p[i];
            switch (st_) {
            case state::leading: // empty lines before the request line, or its first byte
                if (c == '\r') st_ = state::leading_lf;
                else if (is_tchar(c)) { a0_ = i; st_ = state::method; }
                else return fail(c == '\n' ? E::invalid_line_ending : c == ' ' ? E::invalid_request_line : E::invalid_method);
                break;
            case state::leading_lf:
                if (c != '\n') return fail(E::invalid_line_ending);
                st_ = state::leading;
                break;
            case state::method:
                if (c == ' ') { a1_ = i; t0_ = i + 1; st_ = state::target; }
                else if (!is_tchar(c)) return fail(c == '\r' || c == '\n' ? E::invalid_request_line : E::invalid_method);
                break;
            case state::target:
                if (c == ' ') {
                    if (i == t0_) return fail(E::invalid_request_line);
                    t1_ = i;
                    step_ = 0;
                    st_ = state::version;
                } else if (!http_chars.target[c]) {
                    return fail(c == '\r' || c == '\n' ? E::invalid_request_line : E::invalid_target);
                } else if (i - t0_ + 1 > o.max_target) {
                    return fail(E::uri_too_long);
                }
                break;
            case state::version:
                if (const E e = version_byte(c); e != E::none) return fail(e);
                break;
            case state::request_lf:
                if (c != '\n') return fail(E::invalid_line_ending);
                if (!request_line(bytes, out)) return fail(E::invalid_target);
                st_ = state::field_start;
                break;
            case state::field_start: // a header line, or the empty line that ends the head
                if (c == '\r') st_ = state::final_lf;
                else if (c == ' ' || c == '\t') return fail(E::obsolete_line_folding);
                else if (c == '\n') return fail(E::invalid_line_ending);
                else if (fields_ >= max_fields) return fail(E::too_many_headers);
                else if (!is_tchar(c)) return fail(E::invalid_field_name);
                else { a0_ = i; st_ = state::name; }
                break;
            case state::name:
                if (c == ':') { a1_ = i; v0_ = v1_ = i + 1; st_ = state::value; }
                else if (c == ' ' || c == '\t') return fail(E::whitespace_before_colon);
                else if (c == '\r' || c == '\n') return fail(E::missing_colon);
                else if (!is_tchar(c)) return fail(E::invalid_field_name);
                break;
            case state::value: // v0_..v1_: the value without OWS so far
                if (c == '\r') st_ = state::field_lf;
                else if (c == '\n') return fail(E::invalid_line_ending);
                else if (!http_chars.value[c]) return fail(E::invalid_field_value);
                else if (c != ' ' && c != '\t') {
                    if (v0_ == v1_) v0_ = i; // the first byte after the leading OWS
                    v1_ = i + 1;
                }
                break;
            case state::field_lf:
                if (c != '\n') return fail(E::invalid_line_ending);
                if (const E e = field_line(bytes, o, out); e != E::none) return fail(e);
                st_ = state::field_start;
                break;
            case state::final_lf:
                if (c != '\n') return fail(E::invalid_line_ending);
                if (o.require_host && minor_ >= 1 && !host_seen_) return fail(E::missing_host);
                st_ = state::done;
                result_ = {http_parse_status::complete, E::none, i + 1};
                return result_;
            case state::done:
            case state::failed: return result_;
            }
        }
        pos_ = limit;
        if (bytes.size() >= o.max_head_bytes) return fail(E::head_too_large);
        return result_;
    }

private:
    enum class state : std::uint8_t {
        leading, leading_lf, method, target, version, request_lf,
        field_start, name, value, field_lf, final_lf, done, failed,
    };

    http_parse_result fail(http_parse_error e) noexcept {
        st_ = state::failed;
        result_ = {http_parse_status::error, e, 0};
        return result_;
    }

    // One byte of `HTTP/` DIGIT `.` DIGIT CR (`step_` counts the bytes seen).
    http_parse_error version_byte(unsigned char c) noexcept {
        using E = http_parse_error;
        constexpr std::string_view name = "HTTP/";
        const std::uint8_t k = step_++;
        if (k < name.size()) return c == static_cast<unsigned char>(name[k]) ? E::none : E::invalid_version;
        if (k == 5) return !is_digit(c) ? E::invalid_version : c != '1' ? E::unsupported_version : E::none;
        if (k == 6) return c == '.' ? E::none : E::invalid_version;
        if (k == 7) {
            minor_ = static_cast<std::uint8_t>(c - '0');
            return is_digit(c) ? E::none : E::invalid_version;
        }
        if (c == '\r') {
            st_ = state::request_lf;
            return E::none;
        }
        return c == '\n' ? E::invalid_line_ending : E::invalid_version;
    }

    // The request line has ended: classify the target (RFC 9112 3.2) and record the line.
    bool request_line(std::string_view bytes, http_request* out) const noexcept {
        const std::string_view method = bytes.substr(a0_, a1_ - a0_);
        const std::string_view target = bytes.substr(t0_, t1_ - t0_);
        http_target_form form = http_target_form::origin;
        std::string_view path;
        if (target[0] == '/') {
            path = target;
        } else if (target == "*") {
            if (method != "OPTIONS") return false;
            form = http_target_form::asterisk;
        } else if (method == "CONNECT") {
            // uri-host ":" port (RFC 9112 3.2.3): a valid Host value with its port.
            const std::size_t close = target[0] == '[' ? target.find(']') : 0;
            if (!is_valid_host(target) || target.find(':', close) == std::string_view::npos) return false;
            form = http_target_form::authority;
        } else { // absolute-form: scheme "://" authority [path]
            // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 3.1)
            const auto alpha = [](char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; };
            std::size_t s = 0;
            while (s < target.size() && (alpha(target[s]) || (s > 0 && (is_digit(static_cast<unsigned char>(target[s])) ||
                                                                      target[s] == '+' || target[s] == '-' || target[s] == '.'))))
                ++s;
            if (s == 0 || target.substr(s, 3) != "://") return false;
            form = http_target_form::absolute;
            const std::size_t slash = target.find_first_of("/?", s + 3);
            if (slash != std::string_view::npos) path = target.substr(slash);
            else path = target.substr(target.size());
        }
        std::string_view query;
        if (const std::size_t q = path.find('?'); q != std::string_view::npos) {
            query = path.substr(q + 1);
            path = path.substr(0, q);
        }
        if (out) {
            out->method = method;
            out->target = target;
            out->path = path;
            out->query = query;
            out->version = bytes.substr(t1_ + 1, 8);
            out->version_major = 1;
            out->version_minor = minor_;
            out->form = form;
            out->count_ = 0;
        }
        return true;
    }

    // A header line has ended: the Host rules (RFC 9112 3.2) and the record.
    http_parse_error field_line(std::string_view bytes, const http_request_options& o, http_request* out) noexcept {
        const std::string_view name = bytes.substr(a0_, a1_ - a0_);
        const std::string_view value = bytes.substr(v0_, v1_ - v0_);
        if (o.require_host && equals_folded(name, "host")) {
            if (host_seen_) return http_parse_error::duplicate_host;
            host_seen_ = true;
            if (!is_valid_host(value)) return http_parse_error::invalid_host;
        }
        if (out) out->headers_[out->count_++] = {name, value};
        ++fields_;
        return http_parse_error::none;
    }

    std::size_t pos_ = 0;          // next byte to examine
    std::size_t a0_ = 0, a1_ = 0;  // method, then the current field name
    std::size_t t0_ = 0, t1_ = 0;  // request-target
    std::size_t v0_ = 0, v1_ = 0;  // current field value without OWS
    std::size_t fields_ = 0;       // header lines so far
    http_parse_result result_{};
    state st_ = state::leading;
    std::uint8_t step_ = 0;        // bytes of the version seen
    std::uint8_t minor_ = 0;
    bool host_seen_ = false;
};

} // namespace detail

/// @brief Parses the request head at the start of `bytes` (RFC 9112 sections 2-5; see the file
/// comment for the strict choices).
/// @param bytes   everything received so far on the connection (any size; only the first
///                `options.max_head_bytes` bytes are ever read).
/// @param out     filled with views into `bytes` when the result is `complete`; unspecified
///                otherwise.
/// @param options the bounds (see `http_request_options`).
/// @return `partial` (no error in what is there, call again with more), `complete` with
///         `consumed` = the head's length (the bytes after it are not the head's), or `error`
///         with the reason and `http_status()` (400, 414, 431, 505). Errors are reported as soon
///         as the offending byte arrives (a TLS ClientHello or binary junk fails on its first
///         byte), bounds as soon as they are passed.
/// @note Thread-safe (pure function of its arguments). Never allocates, never throws. Work is
///       linear in the bytes read; for a buffer that grows over several reads, use
///       `http_request_parser` to avoid re-reading the head from its start on every read.
[[nodiscard]] inline http_parse_result parse_http_request(std::string_view bytes, http_request& out,
                                                          const http_request_options& options = {}) noexcept {
    out = http_request{};
    detail::http_head_scanner scanner;
    return scanner.run(bytes, options, &out);
}

/// @brief Parses one request head arriving in pieces: call `parse()` with the whole buffer
/// each time it has grown. Each byte is examined once while the head is incomplete, and once
/// more to record the head when it completes. Results are exactly those of
/// `parse_http_request()` on the same bytes.
///
/// Thread safety: none; one parser per connection, used by one thread at a time. 120 bytes on a
/// 64-bit target (the parsed `http_request` lives on the stack of the call that completes the
/// head); construction never allocates or throws.
class http_request_parser {
public:
    /// @brief A parser with the given bounds.
    explicit http_request_parser(const http_request_options& options = {}) noexcept : options_(options) {}

    /// @brief The bounds it was built with.
    [[nodiscard]] const http_request_options& options() const noexcept { return options_; }

    /// @brief Goes on parsing the request head.
    /// @param bytes everything received so far: the bytes of the previous call followed by the
    ///        new ones (the buffer may have moved, its first bytes may not change).
    /// @param out   filled with views into `bytes` when the result is `complete` (not touched
    ///        otherwise).
    /// @return as `parse_http_request()`. Once `complete` or `error`, every later call returns
    ///         the same (with `complete`, `out` is filled again from the `bytes` given).
    [[nodiscard]] http_parse_result parse(std::string_view bytes, http_request& out) noexcept {
        const http_parse_result r = scanner_.run(bytes, options_, nullptr);
        if (r.status != http_parse_status::complete) return r;
        return parse_http_request(bytes, out, options_);
    }

    /// @brief Forgets the bytes seen: the next `parse()` starts a new head.
    void reset() noexcept { scanner_ = {}; }

private:
    detail::http_head_scanner scanner_;
    http_request_options options_;
};

} // namespace switchboard::protocol
