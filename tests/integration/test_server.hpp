// Integration test fixture: a switchboard::tcp_server on 127.0.0.1, an ephemeral port, an
// io_context on N background threads; and a blocking test client on POSIX sockets. The inbox
// store of a test (`test_inbox`): none, a memory_inbox, or a sqlite_inbox on a real file in a
// temporary directory whose completions the server runs under its router mutex.
//
// Every wait is bounded (default 5 s) and waits for a reply, an EOF or a state change, never for
// a fixed time: a failing test fails fast with what it received instead of hanging.
#pragma once

#include <switchboard/asio/tcp_server.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/sqlite/sqlite_inbox.hpp>
#include <switchboard/switchboard.hpp>

#include "../sqlite/sqlite_test.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard_test {

using clock = std::chrono::steady_clock;

/// Bound of every single wait (a reply, an EOF, a state change).
inline constexpr std::chrono::milliseconds default_wait{5000};

inline clock::time_point deadline_in(std::chrono::milliseconds d = default_wait) { return clock::now() + d; }

// Milliseconds left until `deadline`, for poll() (0 when past).
inline int ms_until(clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left > 1000000 ? 1000000 : left + 1);
}

/// Bytes made readable for failure messages: \r \n \t \xNN; long input keeps its last `max` bytes.
inline std::string printable(std::string_view bytes, std::size_t max = 400) {
    std::string out;
    if (bytes.size() > max) {
        out = "[... " + std::to_string(bytes.size() - max) + " bytes] ";
        bytes.remove_prefix(bytes.size() - max);
    }
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c >= 0x7F) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
        } else {
            out += ch;
        }
    }
    return out;
}

/// Polls `pred` until it holds or `deadline` passes; returns its last value. For state that has
/// no socket-visible signal (e.g. `connection_count()`), the only thing polled in these tests.
template <class Pred>
bool wait_until(Pred&& pred, clock::time_point deadline) {
    while (!pred()) {
        if (clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(1)); // poll interval, not a sync
    }
    return true;
}

/// One disconnect as reported by the server's on_disconnect hook.
struct disconnect_record {
    std::string user;
    switchboard::disconnect_reason reason;
};

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end (the
/// SQLite store's tests' own).
using sqlite_test::temp_dir;

/// Which inbox store a test runs against: the protocol tests of the inbox and of acks run once
/// per store (`GENERATE(store_kind::memory, store_kind::sqlite)`).
enum class store_kind { none, memory, sqlite };

inline const char* to_string(store_kind k) {
    switch (k) {
    case store_kind::none: return "no store";
    case store_kind::memory: return "memory_inbox";
    case store_kind::sqlite: return "sqlite_inbox";
    }
    return "?";
}

/// The inbox store of a test: nothing (`none`), a `memory_inbox`, or a `sqlite_inbox` on
/// `inbox.db` in a temporary directory of its own, with the bounds `bounds`. Declare it before the
/// server that serves it (`basic_test_server(test_inbox&, ...)`): the server wires the store's
/// wake to run `run_completions()` on its io_context under the router mutex, and when it stops,
/// flushes the store and runs the last completions before its router goes.
class test_inbox {
public:
    explicit test_inbox(store_kind kind, switchboard::memory_inbox_options bounds = {},
                        const std::function<void(switchboard::sqlite_inbox_options&)>& configure = {})
        : kind_(kind) {
        if (kind == store_kind::memory) {
            memory_ = std::make_unique<switchboard::memory_inbox>(bounds);
        } else if (kind == store_kind::sqlite) {
            dir_ = std::make_unique<temp_dir>();
            options_.path = dir_->file("inbox.db");
            options_.inbox = bounds;
            if (configure) configure(options_);
            open();
        }
    }
    test_inbox(const test_inbox&) = delete;
    test_inbox& operator=(const test_inbox&) = delete;

    [[nodiscard]] store_kind kind() const noexcept { return kind_; }
    /// The store; null for `none`.
    [[nodiscard]] switchboard::inbox_store* get() noexcept {
        if (memory_) return memory_.get();
        return sqlite_.get();
    }
    /// The SQLite store; null unless `sqlite`.
    [[nodiscard]] switchboard::sqlite_inbox* durable() noexcept { return sqlite_.get(); }
    /// The SQLite store's options (path, bounds, ...).
    [[nodiscard]] const switchboard::sqlite_inbox_options& sqlite_options() const noexcept { return options_; }

    /// `base` with this store as its inbox.
    [[nodiscard]] switchboard::router_options router_options(switchboard::router_options base = {}) {
        base.inbox = get();
        return base;
    }

    /// Where the SQLite store's wake goes (from its writer thread); empty: nowhere. Once this
    /// returns with an empty function, no wake calls the previous one any more.
    void set_wake(std::function<void()> wake) {
        std::lock_guard<std::mutex> lock(wake_mutex_);
        wake_ = std::move(wake);
    }

    /// Closes the SQLite store (its writer commits what is queued) and opens the same file again,
    /// as a restart does, after `configure` (if any) changed the options. Only while no router
    /// refers to the store.
    void reopen(const std::function<void(switchboard::sqlite_inbox_options&)>& configure = {}) {
        REQUIRE(kind_ == store_kind::sqlite);
        sqlite_.reset();
        if (configure) configure(options_);
        open();
    }

private:
    void open() {
        options_.wake = [this] {
            std::lock_guard<std::mutex> lock(wake_mutex_);
            if (wake_) wake_();
        };
        auto opened = switchboard::sqlite_inbox::open(options_);
        INFO(opened.error);
        REQUIRE(opened);
        sqlite_ = std::move(opened.store);
    }

    store_kind kind_;
    std::unique_ptr<temp_dir> dir_;
    switchboard::sqlite_inbox_options options_;
    std::unique_ptr<switchboard::memory_inbox> memory_;
    std::mutex wake_mutex_;
    std::function<void()> wake_;
    std::unique_ptr<switchboard::sqlite_inbox> sqlite_; // last: its writer stops before wake_ goes
};

/// A server (`switchboard::tcp_server` or `tls_server`) on 127.0.0.1:0 whose io_context runs on
/// `threads` background threads. `context` is the TLS context, for a tls_server only.
/// The destructor stops the server and joins the threads, bounded (see `stop_and_join`).
template <class Server>
class basic_test_server {
public:
    template <class... Context>
    explicit basic_test_server(unsigned threads = 1, switchboard::tcp_server_options options = {},
                               Context&... context)
        : basic_test_server(switchboard::router_options{}, threads, std::move(options), context...) {}

    /// The same with the router built from `router_options` (session policy, presence grace, an
    /// inbox store...). What `router_options` points to (e.g. a `memory_inbox`) must outlive
    /// this server: declare it before the server.
    template <class... Context>
    explicit basic_test_server(switchboard::router_options router_options, unsigned threads = 1,
                               switchboard::tcp_server_options options = {}, Context&... context)
        : io_(static_cast<int>(threads)), router_(std::move(router_options)),
          server_(io_, context..., router_, std::move(options)) {
        server_.on_disconnect([this](const switchboard::tcp_connection_info& info) {
            std::lock_guard<std::mutex> lock(mutex_);
            disconnects_.push_back({std::string(info.user), info.reason});
            changed_.notify_all();
        });
        server_.on_accept_error([this](const std::error_code&) {
            std::lock_guard<std::mutex> lock(mutex_);
            ++accept_errors_;
        });
        server_.listen({switchboard::net::ip::make_address("127.0.0.1"), 0});
        port_ = server_.local_endpoint().port();
        REQUIRE(port_ != 0);
        threads_.reserve(threads);
        for (unsigned i = 0; i < threads; ++i) {
            threads_.emplace_back([this] {
                io_.run();
                std::lock_guard<std::mutex> lock(mutex_);
                ++returned_;
                changed_.notify_all();
            });
        }
    }

    /// A server whose router stores direct messages in `inbox` (`router_options::inbox` is set
    /// from it); with a SQLite store, the store's completions run on the io_context under the
    /// router mutex, as tcp_chat runs them. `inbox` must outlive this server.
    template <class... Context>
    explicit basic_test_server(test_inbox& inbox, switchboard::router_options router_options = {},
                               unsigned threads = 1, switchboard::tcp_server_options options = {},
                               Context&... context)
        : basic_test_server(inbox.router_options(std::move(router_options)), threads, std::move(options),
                            context...) {
        inbox_ = &inbox;
        if (switchboard::sqlite_inbox* store = inbox.durable()) {
            inbox.set_wake([this, store] {
                switchboard::net::post(io_, [this, store] {
                    server_.with_router([&](switchboard::router&) { (void)store->run_completions(); });
                });
            });
        }
    }

    basic_test_server(const basic_test_server&) = delete;
    basic_test_server& operator=(const basic_test_server&) = delete;

    ~basic_test_server() {
        if (joined_) return;
        const bool clean = stop_and_join();
        if (!clean && std::uncaught_exceptions() == 0)
            FAIL_CHECK("io_context::run() did not return within 5 s of tcp_server::stop()");
    }

    [[nodiscard]] unsigned short port() const noexcept { return port_; }
    [[nodiscard]] Server& server() noexcept { return server_; }
    [[nodiscard]] std::size_t connection_count() const { return server_.connection_count(); }

    /// Calls `f(router&)` under the server's router mutex.
    template <class F>
    decltype(auto) with_router(F&& f) {
        return server_.with_router(std::forward<F>(f));
    }

    /// Stops the server and waits (bounded) until every run() returned, then joins.
    /// @return false when run() had not returned by the deadline (the io_context is then stopped
    ///         forcibly so that the threads can still be joined).
    bool stop_and_join(std::chrono::milliseconds bound = default_wait) {
        if (joined_) return true;
        server_.stop();
        bool clean;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            clean = changed_.wait_for(lock, bound, [&] { return returned_ == threads_.size(); });
        }
        if (!clean) io_.stop();
        for (auto& t : threads_) t.join();
        joined_ = true;
        // As tcp_chat at exit: the store commits what is queued and its last completions run
        // (they call into the router) before the router goes.
        if (inbox_ && inbox_->durable()) {
            inbox_->set_wake({});
            server_.with_router([&](switchboard::router&) {
                inbox_->durable()->flush();
                (void)inbox_->durable()->run_completions();
            });
        }
        return clean;
    }

    /// Waits for the server to report the disconnect of `user` ("" for an unregistered one).
    [[nodiscard]] std::optional<switchboard::disconnect_reason>
    wait_disconnect(std::string_view user, clock::time_point deadline = deadline_in()) {
        std::unique_lock<std::mutex> lock(mutex_);
        std::optional<switchboard::disconnect_reason> found;
        changed_.wait_until(lock, deadline, [&] {
            for (const auto& d : disconnects_)
                if (d.user == user) {
                    found = d.reason;
                    return true;
                }
            return false;
        });
        return found;
    }

    /// Waits until at least `n` disconnects were reported; returns how many there are.
    std::size_t wait_disconnects(std::size_t n, clock::time_point deadline = deadline_in()) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_until(lock, deadline, [&] { return disconnects_.size() >= n; });
        return disconnects_.size();
    }

    [[nodiscard]] std::vector<disconnect_record> disconnects() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return disconnects_;
    }

    [[nodiscard]] std::size_t accept_errors() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return accept_errors_;
    }

private:
    switchboard::net::io_context io_;
    switchboard::router router_;
    Server server_;
    test_inbox* inbox_ = nullptr;
    unsigned short port_ = 0;
    std::vector<std::thread> threads_;
    bool joined_ = false;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t returned_ = 0;
    std::vector<disconnect_record> disconnects_;
    std::size_t accept_errors_ = 0;
};

/// The plain-TCP server fixture, used by most tests.
using test_server = basic_test_server<switchboard::tcp_server>;

/// A blocking line client on a non-blocking POSIX socket; every call is bounded by a deadline.
/// Methods that assert (REQUIRE/FAIL) must run on the test's thread; the `try_` ones never
/// assert and may run on other threads.
class client {
public:
    /// Connects to 127.0.0.1:`port`. `rcvbuf` > 0 sets SO_RCVBUF before connecting (so that the
    /// TCP window is small too). `source` (e.g. "127.0.0.2") binds the local address first, so
    /// that tests can connect from several loopback addresses.
    explicit client(unsigned short port, int rcvbuf = 0, const char* source = nullptr) {
        const std::string error = open(port, rcvbuf, source);
        if (!error.empty()) FAIL("connect to 127.0.0.1:" << port << ": " << error);
    }

    /// Connects without asserting (for worker threads and refused connections): `error` is set
    /// to why it failed, or cleared.
    client(unsigned short port, std::string& error) { error = open(port, 0); }

    client(client&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), in_(std::move(other.in_)), in_pos_(other.in_pos_) {}
    client& operator=(client&&) = delete;
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { close(); }

    [[nodiscard]] int fd() const noexcept { return fd_; }

    /// Writes all of `bytes` (waiting for POLLOUT), or returns why not ("" on success).
    std::string try_send(std::string_view bytes, clock::time_point deadline = deadline_in()) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n > 0) {
                bytes.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                return std::string("send: ") + std::strerror(errno);
            if (!wait_for(POLLOUT, deadline))
                return "send: timed out with " + std::to_string(bytes.size()) + " bytes unsent";
        }
        return {};
    }

    /// Writes all of `bytes` or fails the test.
    void send(std::string_view bytes, clock::time_point deadline = deadline_in()) {
        const std::string error = try_send(bytes, deadline);
        if (!error.empty()) FAIL(error);
    }

    /// Writes what the socket takes now without waiting; fails the test on a socket error.
    std::size_t send_some(std::string_view bytes) {
        for (;;) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            FAIL("send: " << std::strerror(errno));
        }
    }

    enum class read_status { line, timeout, closed };

    /// Reads one line (LF removed) or reports timeout/closed; never asserts.
    read_status try_read_line(std::string& line, clock::time_point deadline = deadline_in()) {
        for (;;) {
            const std::size_t lf = in_.find('\n', in_pos_);
            if (lf != std::string::npos) {
                line.assign(in_, in_pos_, lf - in_pos_);
                in_pos_ = lf + 1;
                if (in_pos_ > 65536 && in_pos_ * 2 > in_.size()) {
                    in_.erase(0, in_pos_);
                    in_pos_ = 0;
                }
                return read_status::line;
            }
            const int got = receive(deadline);
            if (got == 0) return read_status::closed;
            if (got < 0) return read_status::timeout;
        }
    }

    /// Reads one line (LF removed) or fails the test with what arrived so far.
    std::string read_line(clock::time_point deadline = deadline_in()) {
        std::string line;
        switch (try_read_line(line, deadline)) {
        case read_status::line: return line;
        case read_status::timeout:
            FAIL("timed out waiting for a line; unterminated input so far: \"" << printable(pending())
                                                                                     << "\"");
            break;
        case read_status::closed:
            FAIL("connection closed while waiting for a line; unterminated input: \"" << printable(pending())
                                                                                         << "\"");
            break;
        }
        return {};
    }

    /// Expects the server to close the connection (EOF or reset) with nothing more sent.
    void expect_closed(clock::time_point deadline = deadline_in()) {
        for (;;) {
            if (!pending().empty())
                FAIL("expected the connection to close, got: \"" << printable(pending()) << "\"");
            const int got = receive(deadline);
            if (got == 0) return;
            if (got < 0) FAIL("timed out waiting for the server to close the connection");
        }
    }

    /// Reads and discards until the server closes; returns the bytes discarded.
    std::size_t drain_until_closed(clock::time_point deadline = deadline_in()) {
        std::size_t total = in_.size() - in_pos_;
        in_.clear();
        in_pos_ = 0;
        for (;;) {
            const int got = receive(deadline);
            if (got == 0) return total;
            if (got < 0) FAIL("timed out draining until the server closes (" << total << " bytes read)");
            total += in_.size();
            in_.clear();
        }
    }

    /// True when the socket has readable data or an EOF now (no wait).
    bool readable_now() const {
        if (in_.find('\n', in_pos_) != std::string::npos) return true;
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }

    /// Half-close: no more bytes from us; the server should process the rest and close.
    void shutdown_write() { REQUIRE(::shutdown(fd_, SHUT_WR) == 0); }

    /// Closes with a reset (SO_LINGER 0): an abrupt disconnect.
    void reset() {
        if (fd_ < 0) return;
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }

    /// Closes normally (FIN).
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    /// Bytes received but not yet returned as a line.
    [[nodiscard]] std::string_view pending() const { return std::string_view(in_).substr(in_pos_); }

    /// Takes the bytes received so far, waiting until there is at least one; empty when the
    /// connection closed or the deadline passed first (for binary protocols: WebSocket frames).
    std::string take_some(clock::time_point deadline = deadline_in()) {
        if (pending().empty() && receive(deadline) <= 0) return {};
        std::string out(pending());
        in_.clear();
        in_pos_ = 0;
        return out;
    }

private:
    client() = default;

    std::string open(unsigned short port, int rcvbuf, const char* source = nullptr) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        if (source) {
            sockaddr_in local{};
            local.sin_family = AF_INET;
            if (::inet_pton(AF_INET, source, &local.sin_addr) != 1) return std::string("bad source ") + source;
            if (::bind(fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
                return std::string("bind ") + source + ": " + std::strerror(errno);
        }
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return {};
        if (errno != EINPROGRESS) return std::string("connect: ") + std::strerror(errno);
        if (!wait_for(POLLOUT, deadline_in())) return "connect: timed out";
        int error = 0;
        socklen_t len = sizeof error;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
        return error == 0 ? std::string{} : std::string("connect: ") + std::strerror(error);
    }

    bool wait_for(short events, clock::time_point deadline) const {
        for (;;) {
            pollfd p{fd_, events, 0};
            const int r = ::poll(&p, 1, ms_until(deadline));
            if (r > 0) return true;
            if (r < 0 && errno == EINTR) continue;
            if (r == 0 && clock::now() < deadline) continue;
            return false;
        }
    }

    // Appends what can be read; >0 bytes read, 0 on EOF or reset, -1 on timeout.
    int receive(clock::time_point deadline) {
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n > 0) {
                in_.append(buffer, static_cast<std::size_t>(n));
                return static_cast<int>(n);
            }
            if (n == 0) return 0;
            if (errno == EINTR) continue;
            if (errno == ECONNRESET) return 0;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return 0; // any other socket error ends it
            if (!wait_for(POLLIN, deadline)) return -1;
        }
    }

    int fd_ = -1;
    std::string in_;
    std::size_t in_pos_ = 0;
};

/// `user` as the server spells it in replies: ASCII letters folded to lower case.
inline std::string folded(std::string user) {
    for (char& ch : user)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return user;
}

/// Connects and registers `user` (expects `ok register <folded user>`).
inline client registered(unsigned short port, const std::string& user, int rcvbuf = 0) {
    client c(port, rcvbuf);
    c.send("/register " + user + "\n");
    REQUIRE(c.read_line() == "ok register " + folded(user));
    return c;
}

/// Sends `/who` and expects exactly `expected` as the next line: proves that nothing else was
/// queued for `c` before it (the server answers in order).
inline void expect_who(client& c, const std::string& expected) {
    c.send("/who\n");
    REQUIRE(c.read_line() == expected);
}

/// Sends `/who` and expects the next line to be a `who` reply, whatever it lists: a marker round
/// trip proving that nothing else was queued for `c` before it.
inline void expect_nothing_before_marker(client& c) {
    c.send("/who\n");
    const std::string line = c.read_line();
    INFO("expected nothing before the /who marker's reply, got \"" << printable(line) << "\"");
    REQUIRE((line == "who" || line.rfind("who ", 0) == 0));
}

/// Makes `user` a user the server has seen and who has no session now: connects, registers
/// `user` (acks off), checks that nothing was queued for it (with an inbox, nothing stored was
/// waiting), closes, and waits until the server has reported that disconnect, the
/// `disconnects_before + 1`th, as `user`'s. What the tests of the offline inbox and of acks start
/// from: with an inbox the store knows `user` from then on, so messages to it are queued.
/// `disconnects_before`: how many disconnects the server has reported before this call (checked:
/// the wait fails when there are more).
template <class Server>
void register_then_leave(basic_test_server<Server>& server, const std::string& user,
                         std::size_t disconnects_before) {
    {
        client c = registered(server.port(), user);
        expect_nothing_before_marker(c);
    }
    REQUIRE(server.wait_disconnects(disconnects_before + 1) == disconnects_before + 1);
    REQUIRE(server.disconnects()[disconnects_before].user == folded(user));
}

/// True for an answer that a durable store gives once its commit is done, possibly after the
/// answers of later commands (docs/design.md, "Durable outcomes"): `ok queued <user>`,
/// `sent <cid> queued`, `sent <cid> delivered`, and a failed commit's `err store-... <user>` or
/// `sent <cid> store-...`.
inline bool late_with_durable_store(std::string_view line) {
    const auto ends_with = [&](std::string_view tail) {
        return line.size() >= tail.size() && line.substr(line.size() - tail.size()) == tail;
    };
    if (line.rfind("ok queued ", 0) == 0 || line.rfind("err store-", 0) == 0) return true;
    if (line.rfind("sent ", 0) != 0) return false;
    return ends_with(" queued") || ends_with(" delivered") || line.find(" store-") != std::string_view::npos;
}

/// Reads the answers to commands `c` sent together, `expected` listing them in command order.
/// With the memory store (or none) they arrive in exactly that order. With the SQLite store an
/// answer given after a commit (`late_with_durable_store`) may come after the immediate answers
/// of later commands, so there the late answers must arrive in their order and the immediate
/// ones in theirs, however the two interleave.
inline void expect_answers(client& c, store_kind kind, const std::vector<std::string>& expected) {
    std::vector<std::string> got;
    for (std::size_t i = 0; i < expected.size(); ++i) got.push_back(c.read_line());
    if (kind != store_kind::sqlite) {
        REQUIRE(got == expected);
        return;
    }
    const auto split = [](const std::vector<std::string>& lines, bool late) {
        std::vector<std::string> out;
        for (const std::string& l : lines)
            if (late_with_durable_store(l) == late) out.push_back(l);
        return out;
    };
    REQUIRE(split(got, true) == split(expected, true));
    REQUIRE(split(got, false) == split(expected, false));
}

/// Connects, turns acks on, then registers `user` (expects `ok ack on`, `ok register <user>`).
inline client registered_with_acks(unsigned short port, const std::string& user) {
    client c(port);
    c.send("/ack on\n/register " + user + "\n");
    REQUIRE(c.read_line() == "ok ack on");
    REQUIRE(c.read_line() == "ok register " + user);
    return c;
}

/// The wall clock as the server stamps "last seen": Unix time in milliseconds.
inline std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The kernel's largest TCP send buffer (`tcp_wmem` max): what the server's socket to a client
/// that does not read may hold beyond the server's own output queue. 4 MiB when unknown.
inline std::size_t tcp_wmem_max() {
    std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
    std::size_t min = 0, def = 0, max = 0;
    if (f >> min >> def >> max && max > 0) return max;
    return std::size_t{4} << 20;
}

/// Slack for comparing the server's clock with the test's: the server stamps whole milliseconds
/// of `system_clock` (a due time can fall up to 1 ms before the real instant plus the delay), the
/// tests measure intervals on `steady_clock`, and on the machines these tests ran on
/// `system_clock` read on two threads was seen 1 ms out of order. Meaningful differences in these
/// tests (a grace period, a reap after an idle timeout) are hundreds of milliseconds.
inline constexpr std::chrono::milliseconds clock_tolerance{5};

/// Checks that `line` is exactly `presence <user> offline <ms>`, with `<ms>` a plain decimal
/// (digits only) in [`earliest`, `latest`] (Unix ms, inclusive, widened by `clock_tolerance`).
/// Returns `<ms>`.
inline std::int64_t expect_offline_since(const std::string& line, const std::string& user,
                                         std::int64_t earliest, std::int64_t latest) {
    const std::string prefix = "presence " + user + " offline ";
    INFO("line: \"" << printable(line) << "\"");
    REQUIRE(line.rfind(prefix, 0) == 0);
    const std::string digits = line.substr(prefix.size());
    REQUIRE(!digits.empty());
    REQUIRE(digits.size() <= 18);
    REQUIRE(digits.find_first_not_of("0123456789") == std::string::npos);
    REQUIRE((digits.size() == 1 || digits[0] != '0'));
    const std::int64_t ms = std::stoll(digits);
    INFO("last seen " << ms << ", window [" << earliest << ", " << latest << "] +- "
                       << clock_tolerance.count() << " ms");
    REQUIRE(ms >= earliest - clock_tolerance.count());
    REQUIRE(ms <= latest + clock_tolerance.count());
    return ms;
}

} // namespace switchboard_test
