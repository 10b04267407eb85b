// tcp_chat: a line-based chat server on switchboard's TCP adapter. Talk to it with netcat:
//   ./tcp_chat --port 7777          then, in two other terminals:   nc 127.0.0.1 7777
// With --ws-port 8080 it also serves browsers: open http://127.0.0.1:8080/ (WebSocket on /ws).
// Protocol: docs/protocol.md. Logs one line per connect/disconnect to stderr (never message text).
#include <switchboard/asio/tcp_server.hpp>
#include <switchboard/asio/tls_server.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/sqlite/sqlite_inbox.hpp>
#include <switchboard/switchboard.hpp>
#include <switchboard/asio/prometheus.hpp>
#include <switchboard/redis/backplane.hpp>
#include <switchboard/redis/redis_inbox.hpp>
#include <switchboard/websocket/websocket_protocol.hpp>

#include "user_file.hpp"

#include <asio.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr const char* usage_text = R"(usage: tcp_chat [options]

A line-based chat server (switchboard line protocol v1.2). Connect with: nc HOST PORT

options:
  --host ADDRESS      address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)
  --port PORT         TCP port, 0 for any free port (default 7777)
  --threads N         threads running the io_context, 1-256 (default 1)
  --max-line BYTES    longest accepted line, terminator excluded (default 4096)
  --max-output BYTES  queued output per connection before a non-reading client is
                      disconnected (default 1048576)

limits (docs/security.md; 0 turns a limit off):
  --rate MSGS_PER_S   commands per second per connection; over it: err rate-limited
                      (default 0: off)
  --burst N           commands a connection may send at once within --rate (default 20)
  --max-rooms N       rooms one connection may be in (default 64)
  --max-conns N       open connections in total, per listener (the line port and
                      --ws-port each); over it: "* server full" or 503 (default 0)
  --max-conns-per-ip N  open connections per remote address, per listener (default 0)
  --register-timeout SECONDS  close connections that do not /register in time (default 30)
  --idle-timeout SECONDS      close registered connections silent this long (default 0)
  --drain-timeout SECONDS     cut a closing connection that has not flushed its output
                              this long after /quit, EOF or a timeout (default 10)
  --max-room-members N        members one room may hold; over it: err room-full
                              (default 0: no limit)

devices, presence and offline messages (line protocol v1.2, docs/protocol.md):
  --sessions exclusive|replace|multi
                      what a second /register of a held name does: exclusive refuses it
                      (err name-taken), replace takes the name over (the old session
                      gets "bye replaced"), multi lets several sessions hold it
                      (default exclusive)
  --max-sessions N    sessions per user with --sessions multi, 1-65536 (default 8)
  --max-watches N     users one session may /watch, 1-1048576 (default 256)
  --presence-grace MS delay before a user is announced offline; a user back within it
                      is never announced (0-86400000, default 0)
  --offline           keep direct messages for known users who are offline (in memory,
                      lost at exit) and deliver them when they register; turns on
                      /ack. Known: registered once since start, or listed in --users
  --offline sqlite:PATH
                      the same, kept in the SQLite database PATH (created when missing;
                      its directory must exist): stored messages, sequence numbers,
                      known users and /send ids survive a restart and kill -9.
                      "ok queued" is answered once the message is committed; a failed
                      commit is answered err store-busy|store-full|store-failed
                      (docs/durability.md). --offline memory is plain --offline
  --fsync             with --offline sqlite:PATH: SQLite synchronous=FULL (every commit
                      is synced to disk, so it also survives a power loss; slower)
                      instead of NORMAL (survives a crash of tcp_chat, not of the OS)
  --inbox-max N       stored messages per user, 1-16777216 (default 1000); with --offline
  --inbox-ttl SECONDS stored messages older than this are dropped, 1-315360000
                      (default 604800: 7 days); with --offline
  --inbox-bytes BYTES all stored messages together, bookkeeping included (default
                      268435456: 256 MiB); past it: err inbox-full; with --offline
                      (not with --redis)

browsers (WebSocket, RFC 6455; docs/protocol.md, "WebSocket"):
  --ws-port PORT      also listen on PORT (same --host) for HTTP and WebSocket: GET / is
                      the chat page, /ws the WebSocket endpoint (subprotocols
                      switchboard.json and switchboard.line), /metrics the counters in
                      the Prometheus text format, /healthz. With --tls-*: https and wss
  --ws-origin ORIGIN  allow only this Origin (e.g. http://127.0.0.1:8080) to open a
                      WebSocket; repeat for more. Default: any origin. Requests with no
                      Origin (non-browser clients) are always allowed
  --web-page FILE     the page served on GET / (default: examples/web/index.html of the
                      source tree tcp_chat was built from)
  --handshake-timeout SECONDS  cut a --ws-port connection whose HTTP request or upgrade
                      is not complete this long after it was accepted, however slowly
                      it sends (0-3600, 0: off; default 10)

TLS (TLS 1.2 or newer; plain TCP when not given):
  --tls-cert FILE     PEM certificate chain (server certificate first)
  --tls-key FILE      PEM private key of that certificate
                      connect with: ncat --ssl --ssl-verify --ssl-trustfile CA HOST PORT, or
                      openssl s_client -quiet -CAfile CA -verify_hostname HOST -connect HOST:PORT
                      (CA: your CA's certificate; a self-signed certificate is its own CA)

identity:
  --users FILE        names listed in FILE need their secret: /register <user> <secret>
                      (wrong or missing: err auth-failed <user>)
  --users-only        only names listed in --users FILE may register
  --auth-rate N       secret checks per second, server-wide (default 5); each costs one
                      PBKDF2 on the I/O thread, so this bounds what guessing can cost others
  --hash-secret USER  read a secret from standard input, print the --users line for USER
                      and exit

cluster (several tcp_chat processes sharing users and rooms through Redis; docs/cluster.md):
  --redis HOST:PORT   join the cluster whose directory is the Redis at HOST:PORT (an IP
                      literal or a host name); users on other nodes can be messaged,
                      watched and met in rooms. Needs --node-id
  --node-id ID        this node's id, unique in the cluster and the same after a restart
                      (1-40 of A-Z a-z 0-9 _ . -)
  --lease-ms MS       the node's lease in Redis: if it cannot renew it this long, the other
                      nodes drop its users and it closes its sessions that hold a name
                      (100-600000, default 3000)
  --offline           with --redis: the inbox is in Redis, shared by every node (a message
                      queued via one node is replayed on any other; acks and /send ids
                      work across nodes). "ok queued" is answered once Redis stored it;
                      run Redis with --appendonly yes --appendfsync always, or a restart
                      of Redis loses it (docs/cluster.md). Needs --threads 1

  --help              show this help and exit

Stops gracefully on SIGINT (Ctrl-C) or SIGTERM and exits 0.
)";

struct settings {
    std::string host = "127.0.0.1";
    unsigned short port = 7777;
    unsigned threads = 1;
    std::size_t max_line = switchboard::protocol::default_max_line;
    std::size_t max_output = std::size_t{1} << 20;
    std::uint32_t rate = 0;
    std::uint32_t burst = 20;
    std::size_t max_rooms = 64;
    std::size_t max_conns = 0;
    std::size_t max_conns_per_ip = 0;
    unsigned register_timeout_s = 30;
    unsigned idle_timeout_s = 0;
    unsigned drain_timeout_s = 10;
    unsigned handshake_timeout_s = 10;
    std::size_t max_room_members = 0; // 0: no limit
    switchboard::session_policy sessions = switchboard::session_policy::exclusive;
    std::size_t max_sessions = 8;
    std::size_t max_watches = 256;
    std::uint32_t presence_grace_ms = 0;
    bool offline = false;
    std::string sqlite_path; // --offline sqlite:PATH; empty: the memory store
    bool fsync = false;
    std::size_t inbox_max = 1000;
    std::size_t inbox_bytes = std::size_t{256} << 20;
    std::uint32_t inbox_ttl_s = 604800;
    std::vector<std::string> given; // options given, for the checks that combine them
    std::string users_path;
    bool users_only = false;
    std::uint32_t auth_rate = 5;
    std::optional<std::string> hash_user;
    std::string tls_cert;
    std::string tls_key;
    std::optional<unsigned short> ws_port;
    std::vector<std::string> ws_origins;
    std::string web_page = SWITCHBOARD_WEB_PAGE;
    std::string redis_host; // --redis; empty: a single node
    std::uint16_t redis_port = 0;
    std::string node_id;
    std::uint32_t lease_ms = 3000;
};

template <class T>
bool parse_number(std::string_view text, T& out, T min, T max) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) return false;
    out = value;
    return true;
}

// --redis HOST:PORT (the port after the last colon; an IPv6 literal may be bracketed).
bool parse_redis(std::string_view text, settings& s) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty() || !parse_number<std::uint16_t>(text.substr(colon + 1), s.redis_port, 1, 65535)) return false;
    s.redis_host = std::string(host);
    return true;
}

bool parse_policy(std::string_view text, switchboard::session_policy& out) {
    if (text == "exclusive") out = switchboard::session_policy::exclusive;
    else if (text == "replace") out = switchboard::session_policy::replace;
    else if (text == "multi") out = switchboard::session_policy::multi;
    else return false;
    return true;
}

bool given(const settings& s, std::string_view option) {
    for (const std::string& g : s.given)
        if (g == option) return true;
    return false;
}

// Returns 0 to run, 1 for --help, 2 for a usage error (message printed).
int parse_args(int argc, char** argv, settings& s) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") return 1;
        if (arg == "--users-only") {
            s.users_only = true;
            continue;
        }
        if (arg == "--offline") { // an optional value: memory (the default) or sqlite:PATH
            s.offline = true;
            s.given.emplace_back(arg);
            if (i + 1 >= argc || std::string_view(argv[i + 1]).substr(0, 1) == "-") continue;
            const std::string_view store = argv[++i];
            constexpr std::string_view sqlite_prefix = "sqlite:";
            if (store.substr(0, sqlite_prefix.size()) == sqlite_prefix && store.size() > sqlite_prefix.size()) {
                s.sqlite_path = std::string(store.substr(sqlite_prefix.size()));
            } else if (store != "memory") {
                std::cerr << "tcp_chat: bad value for --offline: " << store << " (memory or sqlite:PATH)\n";
                return 2;
            }
            continue;
        }
        if (arg == "--fsync") {
            s.fsync = true;
            s.given.emplace_back(arg);
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << "tcp_chat: " << arg << (arg.substr(0, 2) == "--" ? " needs a value" : ": unknown option")
                      << " (see --help)\n";
            return 2;
        }
        const std::string_view value = argv[++i];
        bool ok = true;
        const char* hint = "see --help";
        if (arg == "--host") s.host = std::string(value);
        else if (arg == "--port") ok = parse_number<unsigned short>(value, s.port, 0, 65535);
        else if (arg == "--threads") ok = parse_number<unsigned>(value, s.threads, 1, 256);
        else if (arg == "--max-line") ok = parse_number<std::size_t>(value, s.max_line, 1, std::size_t{1} << 24);
        else if (arg == "--max-output")
            ok = parse_number<std::size_t>(value, s.max_output, 1, std::size_t{1} << 34);
        else if (arg == "--rate") ok = parse_number<std::uint32_t>(value, s.rate, 0, 1000000000);
        else if (arg == "--burst") ok = parse_number<std::uint32_t>(value, s.burst, 1, 1000000000);
        else if (arg == "--max-rooms") ok = parse_number<std::size_t>(value, s.max_rooms, 1, 1u << 30);
        else if (arg == "--max-conns") ok = parse_number<std::size_t>(value, s.max_conns, 0, 1u << 30);
        else if (arg == "--max-conns-per-ip")
            ok = parse_number<std::size_t>(value, s.max_conns_per_ip, 0, 1u << 30);
        else if (arg == "--register-timeout")
            ok = parse_number<unsigned>(value, s.register_timeout_s, 0, 1000000);
        else if (arg == "--idle-timeout") ok = parse_number<unsigned>(value, s.idle_timeout_s, 0, 1000000);
        else if (arg == "--drain-timeout") ok = parse_number<unsigned>(value, s.drain_timeout_s, 0, 1000000);
        else if (arg == "--max-room-members")
            ok = parse_number<std::size_t>(value, s.max_room_members, 0, 1u << 30);
        else if (arg == "--sessions") {
            ok = parse_policy(value, s.sessions);
            hint = "exclusive, replace or multi";
        } else if (arg == "--max-sessions") {
            ok = parse_number<std::size_t>(value, s.max_sessions, 1, 65536);
            hint = "1 to 65536";
        } else if (arg == "--max-watches") {
            ok = parse_number<std::size_t>(value, s.max_watches, 1, 1u << 20);
            hint = "1 to 1048576";
        } else if (arg == "--presence-grace") {
            ok = parse_number<std::uint32_t>(value, s.presence_grace_ms, 0, 86400000);
            hint = "milliseconds, 0 to 86400000";
        } else if (arg == "--inbox-max") {
            ok = parse_number<std::size_t>(value, s.inbox_max, 1, std::size_t{1} << 24);
            hint = "1 to 16777216";
        } else if (arg == "--inbox-bytes") {
            ok = parse_number<std::size_t>(value, s.inbox_bytes, 1, std::size_t{1} << 40);
            hint = "1 to 1099511627776";
        } else if (arg == "--inbox-ttl") {
            ok = parse_number<std::uint32_t>(value, s.inbox_ttl_s, 1, 315360000);
            hint = "seconds, 1 to 315360000";
        }
        else if (arg == "--users") s.users_path = std::string(value);
        else if (arg == "--auth-rate") ok = parse_number<std::uint32_t>(value, s.auth_rate, 1, 1000000);
        else if (arg == "--hash-secret") s.hash_user = std::string(value);
        else if (arg == "--ws-port") {
            unsigned short port = 0;
            ok = parse_number<unsigned short>(value, port, 0, 65535);
            hint = "0 to 65535";
            if (ok) s.ws_port = port;
        } else if (arg == "--ws-origin") s.ws_origins.emplace_back(value);
        else if (arg == "--web-page") s.web_page = std::string(value);
        else if (arg == "--handshake-timeout") {
            ok = parse_number<unsigned>(value, s.handshake_timeout_s, 0, 3600);
            hint = "seconds, 0 to 3600";
        }
        else if (arg == "--tls-cert") s.tls_cert = std::string(value);
        else if (arg == "--tls-key") s.tls_key = std::string(value);
        else if (arg == "--redis") {
            ok = parse_redis(value, s);
            hint = "HOST:PORT";
        } else if (arg == "--node-id") {
            ok = switchboard::is_valid_name(value);
            if (ok) s.node_id = std::string(value);
            hint = "1-40 of A-Z a-z 0-9 _ . -";
        } else if (arg == "--lease-ms") {
            ok = parse_number<std::uint32_t>(value, s.lease_ms, 100, 600000);
            hint = "milliseconds, 100 to 600000";
        }
        else {
            std::cerr << "tcp_chat: unknown option " << arg << " (see --help)\n";
            return 2;
        }
        if (!ok) {
            std::cerr << "tcp_chat: bad value for " << arg << ": " << value << " (" << hint << ")\n";
            return 2;
        }
        s.given.emplace_back(arg);
    }
    // Options that would silently do nothing are refused: the operator meant something else.
    for (const char* inbox_option : {"--inbox-max", "--inbox-ttl", "--inbox-bytes"})
        if (given(s, inbox_option) && !s.offline) {
            std::cerr << "tcp_chat: " << inbox_option << " needs --offline (see --help)\n";
            return 2;
        }
    if (s.fsync && s.sqlite_path.empty()) {
        std::cerr << "tcp_chat: --fsync needs --offline sqlite:PATH (see --help)\n";
        return 2;
    }
    if (s.redis_host.empty() != s.node_id.empty()) {
        std::cerr << "tcp_chat: --redis and --node-id go together (see --help)\n";
        return 2;
    }
    if (given(s, "--lease-ms") && s.redis_host.empty()) {
        std::cerr << "tcp_chat: --lease-ms needs --redis (see --help)\n";
        return 2;
    }
    if (s.offline && !s.redis_host.empty()) { // the cluster inbox, in Redis (docs/cluster.md)
        if (!s.sqlite_path.empty()) {
            std::cerr << "tcp_chat: --offline sqlite:PATH does not go with --redis: the cluster's inbox is in "
                         "Redis (plain --offline)\n";
            return 2;
        }
        if (given(s, "--inbox-bytes")) {
            std::cerr << "tcp_chat: --inbox-bytes does not go with --redis: Redis' maxmemory bounds the "
                         "cluster inbox\n";
            return 2;
        }
        if (s.threads != 1) {
            std::cerr << "tcp_chat: --offline with --redis needs --threads 1 (the cluster inbox runs on the "
                         "I/O thread)\n";
            return 2;
        }
    }
    if (given(s, "--max-sessions") && s.sessions != switchboard::session_policy::multi) {
        std::cerr << "tcp_chat: --max-sessions needs --sessions multi (see --help)\n";
        return 2;
    }
    return 0;
}

// The connect/disconnect/accept-error log lines of one listener (`what`: "" or "ws ").
template <class Server>
void log_connections(Server& server, std::mutex& log_mutex, const char* what) {
    server.on_connect([&log_mutex, what](const switchboard::tcp_connection_info& c) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << what << "connect " << c.peer << " session " << c.session.index() << "\n";
    });
    server.on_disconnect([&log_mutex, what](const switchboard::tcp_connection_info& c) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << what << "disconnect " << c.peer << " session " << c.session.index() << " user "
                  << (c.user.empty() ? std::string_view("-") : c.user) << " reason " << to_string(c.reason);
        if (c.error) std::cerr << " (" << c.error.message() << ")";
        std::cerr << "\n";
    });
    server.on_accept_error([&log_mutex](const std::error_code& e) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << "accept error: " << e.message() << " (retrying)\n";
    });
}

// A client on this machine reaches a listener bound to every address (0.0.0.0 or ::) on loopback.
asio::ip::address reachable(const asio::ip::address& a) {
    if (!a.is_unspecified()) return a;
    return a.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                     : asio::ip::address(asio::ip::address_v4::loopback());
}

void print_counters(const char* what, const switchboard::tcp_server_counters& c) {
    std::cerr << what << "accepted " << c.accepted << ", refused " << c.refused_full << " (full) "
              << c.refused_per_address << " (per address), timeouts " << c.register_timeouts << " (register) "
              << c.handshake_timeouts << " (handshake) " << c.idle_timeouts << " (idle), slow consumers "
              << c.slow_consumers << ", rate-limited " << c.rate_limited;
}

// Hooks, listen, signals and the io_context threads: the same for the plain and the TLS server,
// with or without the WebSocket listener `ws` (null: none). `report` appends the router-side
// counters to the line printed at exit.
template <class Server, class WsServer, class Report>
int serve(Server& server, WsServer* ws, asio::io_context& io, const settings& s, const asio::ip::address& address,
          const Report& report, const std::function<void()>& on_start, const std::function<void()>& on_stop) {
    std::error_code ec;
    std::mutex log_mutex; // hooks may run on several threads
    log_connections(server, log_mutex, "");
    if (ws) log_connections(*ws, log_mutex, "ws ");

    server.listen({address, s.port}, ec);
    if (ec) {
        std::cerr << "tcp_chat: cannot listen on " << s.host << ":" << s.port << ": " << ec.message() << "\n";
        return 1;
    }
    if (ws) {
        ws->listen({address, *s.ws_port}, ec);
        if (ec) {
            std::cerr << "tcp_chat: cannot listen on " << s.host << ":" << *s.ws_port << " (--ws-port): "
                      << ec.message() << "\n";
            return 1;
        }
    }
    const auto at = server.local_endpoint();
    const auto reach = reachable(at.address());
    std::cerr << "tcp_chat: listening on " << at << (s.tls_cert.empty() ? "" : " (TLS)") << " with " << s.threads
              << " thread(s); connect with: ";
    if (s.tls_cert.empty())
        std::cerr << "nc " << reach << " " << at.port() << "\n";
    else // verify the server: a self-signed certificate is its own trust file
        std::cerr << "ncat --ssl --ssl-verify --ssl-trustfile " << s.tls_cert << " localhost " << at.port()
                  << " (the name must match the certificate; use your CA file for a CA-signed one)\n";
    if (ws) {
        const auto wat = ws->local_endpoint();
        const char* scheme = s.tls_cert.empty() ? "http" : "https";
        asio::ip::address shown = reachable(wat.address());
        std::cerr << "tcp_chat: browsers: open " << scheme << "://"
                  << (shown.is_v6() ? "[" + shown.to_string() + "]" : shown.to_string()) << ":" << wat.port()
                  << "/ (WebSocket " << (s.tls_cert.empty() ? "ws" : "wss") << " on /ws, metrics on /metrics)\n";
    }

    if (on_start) on_start();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const std::error_code& e, int signo) {
        if (e) return;
        std::cerr << "tcp_chat: signal " << signo << ", stopping\n";
        server.stop();
        if (ws) ws->stop();
        if (on_stop) on_stop();
    });

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < s.threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
    print_counters("tcp_chat: stopped; line listener: ", server.counters());
    if (ws) print_counters("; WebSocket listener: ", ws->counters());
    std::cerr << "; router:";
    report(std::cerr);
    std::cerr << "\n";
    return 0;
}

// The WebSocket listener's settings: the page, the allowed origins, /metrics over both listeners.
template <class WsServer, class Server>
bool setup_websocket(WsServer& ws, Server& line_server, switchboard::router& router, const settings& s) {
    auto& c = ws.protocol_config();
    c.upgrade.allowed_origins = s.ws_origins;
    c.greeting = "welcome to switchboard chat"; // the line greeting names netcat commands
    std::ifstream page(s.web_page, std::ios::binary);
    if (!page) {
        std::cerr << "tcp_chat: cannot read --web-page " << s.web_page << ": GET / will be 404\n";
    } else {
        std::ostringstream body;
        body << page.rdbuf();
        c.page = body.str();
    }
    // Runs under the router mutex (the protocol's handshake): counters(std::adopt_lock) takes no lock.
    c.metrics = [&ws, &line_server, &router] {
        return switchboard::prometheus_text(
            router, {{"tcp", line_server.counters(std::adopt_lock), line_server.connection_count()},
                     {"ws", ws.counters(std::adopt_lock), ws.connection_count()}});
    };
    return true;
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    if (const int r = parse_args(argc, argv, s); r != 0) {
        if (r == 1) std::cout << usage_text;
        return r == 1 ? 0 : 2;
    }

    if (s.hash_user) { // a line for --users, from a secret on standard input
        std::string secret;
        std::getline(std::cin, secret);
        if (!secret.empty() && secret.back() == '\r') secret.pop_back();
        const std::string line = tcp_chat::user_file::hash_line(*s.hash_user, secret);
        if (line.empty()) {
            std::cerr << "tcp_chat: cannot hash a secret for " << *s.hash_user
                      << " (is it a valid name? 1-40 of A-Z a-z 0-9 _ . -)\n";
            return 2;
        }
        std::cout << line << "\n";
        return 0;
    }
    std::optional<tcp_chat::user_file> users;
    if (!s.users_path.empty()) {
        std::string error;
        users = tcp_chat::user_file::load(s.users_path, error);
        if (!users) {
            std::cerr << "tcp_chat: --users " << error << "\n";
            return 2;
        }
    } else if (s.users_only) {
        std::cerr << "tcp_chat: --users-only needs --users FILE\n";
        return 2;
    }

    std::error_code ec;
    const auto address = asio::ip::make_address(s.host, ec);
    if (ec) {
        std::cerr << "tcp_chat: bad --host " << s.host << ": " << ec.message() << "\n";
        return 2;
    }

    asio::io_context io(static_cast<int>(s.threads));
    switchboard::tcp_server_options options;
    options.max_line = s.max_line;
    options.max_output_bytes = s.max_output;
    options.rate = switchboard::rate_limit{s.rate, s.burst};
    options.max_connections = s.max_conns;
    options.max_connections_per_address = s.max_conns_per_ip;
    options.register_timeout = std::chrono::seconds(s.register_timeout_s);
    options.idle_timeout = std::chrono::seconds(s.idle_timeout_s);
    options.drain_timeout = std::chrono::seconds(s.drain_timeout_s);
    options.handshake_timeout = std::chrono::seconds(s.handshake_timeout_s);
    options.greeting = "welcome to switchboard chat. register with: /register <name>\n"
                       "then: /msg <user> <text>, /join <room>, /say <room> <text>, /who, /quit";
    switchboard::router_options router_options;
    router_options.max_rooms_per_session = s.max_rooms;
    if (s.max_room_members != 0) router_options.max_room_members = s.max_room_members;
    router_options.sessions = s.sessions;
    router_options.max_sessions_per_user = s.max_sessions;
    router_options.max_watches_per_session = s.max_watches;
    router_options.presence_grace = std::chrono::milliseconds(s.presence_grace_ms);
    // As many unacknowledged messages of the longest size as one connection's output bound holds.
    router_options.ack_window = switchboard::recommended_ack_window(options);
    // --offline: the memory store, or the SQLite store (--offline sqlite:PATH). The store must
    // outlive the router (declared first), which refers to it.
    // The router mutex, passed to the server: the SQLite store's completions run under it too.
    std::mutex router_mutex;
    std::optional<switchboard::memory_inbox> memory_store;
    std::unique_ptr<switchboard::sqlite_inbox> sqlite_store;
    std::atomic<bool> completions_posted{false};
    switchboard::inbox_store* inbox = nullptr;
    // --offline with --redis: the cluster inbox, on a Redis connection of its own (the I/O thread).
    std::optional<switchboard::redis::connection> inbox_connection;
    std::optional<switchboard::redis::inbox> redis_store;
    if (s.offline && !s.redis_host.empty()) {
        switchboard::redis::connection_options connection_options;
        connection_options.host = s.redis_host;
        connection_options.port = s.redis_port;
        inbox_connection.emplace(io, connection_options);
        switchboard::redis::inbox_options store_options;
        store_options.max_per_user = s.inbox_max;
        store_options.ttl = std::chrono::seconds(s.inbox_ttl_s);
        // The /send records live as long as the router's window (router_options defaults).
        store_options.dedup_window = router_options.dedup_window;
        store_options.dedup_ttl = std::chrono::duration_cast<std::chrono::seconds>(router_options.dedup_ttl);
        inbox = &redis_store.emplace(*inbox_connection, store_options);
        inbox_connection->on_up([] { std::cerr << "tcp_chat: cluster inbox: connected to Redis\n"; });
        inbox_connection->on_down([] {
            std::cerr << "tcp_chat: cluster inbox: Redis connection lost; messages to offline users and "
                         "registrations are refused (cluster-unavailable) until it is back\n";
        });
        inbox_connection->start();
        if (users) users->for_each_user([&](const switchboard::name& user) { inbox->remember(user); });
        router_options.inbox = inbox;
        std::cerr << "tcp_chat: offline inbox on (Redis " << s.redis_host << ":" << s.redis_port
                  << ", shared by the cluster): " << s.inbox_max << " messages per user, kept " << s.inbox_ttl_s
                  << " s\n";
    } else if (s.offline) {
        switchboard::memory_inbox_options inbox_options;
        inbox_options.max_per_user = s.inbox_max;
        inbox_options.max_bytes = s.inbox_bytes;
        inbox_options.ttl = std::chrono::seconds(s.inbox_ttl_s);
        if (s.sqlite_path.empty()) {
            inbox = &memory_store.emplace(inbox_options);
        } else {
            switchboard::sqlite_inbox_options store_options;
            store_options.path = s.sqlite_path;
            store_options.synchronous = s.fsync ? switchboard::sqlite_synchronous::full
                                                : switchboard::sqlite_synchronous::normal;
            store_options.inbox = inbox_options;
            // Called from the store's writer thread when a batch has finished: the completions
            // (which answer the senders: ok queued, sent, err store-...) run on an I/O thread
            // under the router mutex. One post at a time; a wake while one is pending needs none,
            // as the flag is cleared before the completions are taken.
            store_options.wake = [&io, &router_mutex, &sqlite_store, &completions_posted] {
                if (completions_posted.exchange(true)) return;
                asio::post(io, [&router_mutex, &sqlite_store, &completions_posted] {
                    completions_posted.store(false);
                    std::lock_guard<std::mutex> lock(router_mutex);
                    (void)sqlite_store->run_completions();
                });
            };
            auto opened = switchboard::sqlite_inbox::open(std::move(store_options));
            if (!opened) { // a corrupt or unreadable file, a missing directory, a newer schema
                std::cerr << "tcp_chat: " << opened.error << "\n";
                return 1;
            }
            sqlite_store = std::move(opened.store);
            inbox = sqlite_store.get();
        }
        if (users) users->for_each_user([&](const switchboard::name& user) { inbox->remember(user); });
        router_options.inbox = inbox;
        std::cerr << "tcp_chat: offline inbox on (";
        if (sqlite_store)
            std::cerr << "SQLite " << s.sqlite_path << ", synchronous " << (s.fsync ? "FULL" : "NORMAL") << ": "
                      << sqlite_store->view().message_count() << " message(s) of "
                      << sqlite_store->view().known_users() << " known user(s) restored";
        else
            std::cerr << "memory, lost at exit";
        std::cerr << "): " << s.inbox_max << " messages per user, kept " << s.inbox_ttl_s << " s"
                  << (users ? ", users of --users known from the start" : "") << "\n";
    }
    if (s.sessions != switchboard::session_policy::exclusive || s.presence_grace_ms != 0)
        std::cerr << "tcp_chat: sessions "
                  << (s.sessions == switchboard::session_policy::replace ? "replace"
                      : s.sessions == switchboard::session_policy::multi
                          ? "multi (at most " + std::to_string(s.max_sessions) + " per user)"
                          : std::string("exclusive"))
                  << ", presence grace " << s.presence_grace_ms << " ms\n";
    // --redis: this router is one node of a cluster; the backplane is its directory and must
    // outlive it (declared first). hiredis is not thread-safe: with --threads 1 the backplane
    // shares the io_context; with more, it gets a one-thread io_context of its own.
    std::optional<asio::io_context> cluster_io;
    std::unique_ptr<switchboard::redis::backplane> cluster;
    std::thread cluster_thread;
    if (!s.redis_host.empty()) {
        switchboard::redis::backplane_options cluster_options;
        cluster_options.node_id = s.node_id;
        cluster_options.redis.host = s.redis_host;
        cluster_options.redis.port = s.redis_port;
        cluster_options.lease = std::chrono::milliseconds(s.lease_ms);
        cluster_options.sessions = s.sessions;
        cluster_options.max_sessions_per_user = s.max_sessions;
        cluster_options.log = [](std::string_view line) { std::cerr << "tcp_chat: cluster: " << line << "\n"; };
        if (redis_store) { // a user's stored messages are loaded before its registration completes
            cluster_options.on_granted = [&redis_store](const switchboard::name& user, std::function<void(bool)> done) {
                const auto now = std::chrono::system_clock::now().time_since_epoch();
                redis_store->load(user, std::chrono::duration_cast<std::chrono::milliseconds>(now).count(),
                                  std::move(done));
            };
            cluster_options.on_released = [&redis_store](const switchboard::name& user) { redis_store->unload(user); };
            // An acknowledgement on one node reaches the caches of the user's other nodes.
            cluster_options.on_acknowledged = [&redis_store](const switchboard::name& user, std::uint64_t through) {
                redis_store->acknowledged_elsewhere(user, through);
            };
        }
        asio::io_context& cio = s.threads == 1 ? io : cluster_io.emplace(1);
        cluster = std::make_unique<switchboard::redis::backplane>(cio, std::move(cluster_options));
        if (redis_store)
            redis_store->on_acknowledge([&cluster](const switchboard::name& user, std::uint64_t through) {
                cluster->acknowledged(user, through);
            });
        router_options.directory = cluster.get();
        std::cerr << "tcp_chat: cluster node " << s.node_id << " on Redis " << s.redis_host << ":" << s.redis_port
                  << ", lease " << s.lease_ms << " ms\n";
    }
    switchboard::router router(router_options);
    const std::function<void()> cluster_start = [&] {
        if (!cluster) return;
        cluster->start(router, &router_mutex);
        if (cluster_io) cluster_thread = std::thread([&cluster_io] { cluster_io->run(); });
    };
    const std::function<void()> cluster_stop = [&] {
        if (cluster) cluster->stop();
        // The cluster inbox's connection ends too (its reconnects would keep the io_context
        // running); appends still unanswered are answered cluster-unavailable (--threads 1: this
        // runs on the only I/O thread, as the store's completions do).
        if (inbox_connection) inbox_connection->stop();
    };
    // Listed names need their secret; others are open unless --users-only. The authorizer runs
    // under the router mutex, so the verification budget below needs no lock of its own.
    switchboard::rate_limiter verifications(switchboard::rate_limit{s.auth_rate, s.auth_rate});
    std::uint64_t auth_throttled = 0;
    if (users) {
        router.set_authorizer([&](switchboard::session_id, const switchboard::name& user, std::string_view secret) {
            if (!users->contains(user))
                return s.users_only ? switchboard::status::auth_failed : switchboard::status::ok;
            if (!verifications.try_acquire(std::chrono::steady_clock::now().time_since_epoch())) {
                ++auth_throttled;
                return switchboard::status::auth_failed;
            }
            return users->verify(user, secret) ? switchboard::status::ok : switchboard::status::auth_failed;
        });
    }
    if (users)
        std::cerr << "tcp_chat: " << users->size() << " user(s) need a secret"
                  << (s.users_only ? "; no other names may register" : "") << "\n";
    if (s.tls_cert.empty() != s.tls_key.empty()) {
        std::cerr << "tcp_chat: --tls-cert and --tls-key go together\n";
        return 2;
    }
    const auto report = [&](std::ostream& out) {
        // The backplane's thread (--redis with --threads > 1) may still be leaving the cluster.
        std::lock_guard<std::mutex> lock(router_mutex);
        out << " auth-failed " << router.counters().auth_failed << " (" << auth_throttled
            << " over --auth-rate), too-many-rooms " << router.counters().too_many_rooms;
        if (sqlite_store) out << ", store failures " << router.counters().store_failures;
        if (cluster) {
            const auto& c = cluster->counters();
            out << ", cluster: " << c.records_out << " event(s) sent to other nodes in " << c.publishes
                << " publish(es), " << c.records_in << " received, " << c.unavailable << " refused (Redis out of reach), "
                << c.lease_losses << " lease loss(es), sends confirmed by other nodes " << c.confirmed << " (refused "
                << c.confirm_failed << ", unanswered " << c.confirm_timeouts << ")";
        }
    };
    int exit_code = 0;
    if (!s.tls_cert.empty()) {
        auto context = switchboard::make_tls_context(s.tls_cert, s.tls_key, ec);
        if (ec) {
            std::cerr << "tcp_chat: cannot use --tls-cert " << s.tls_cert << " / --tls-key " << s.tls_key << ": "
                      << ec.message() << "\n";
            return 2;
        }
        switchboard::tls_server server(io, context, router, options, &router_mutex);
        std::optional<switchboard::basic_tcp_server<switchboard::tls_stream, switchboard::websocket::websocket_protocol>> ws;
        if (s.ws_port) setup_websocket(ws.emplace(io, context, router, options, &router_mutex), server, router, s);
        exit_code = serve(server, ws ? &*ws : nullptr, io, s, address, report, cluster_start, cluster_stop);
    } else {
        switchboard::tcp_server server(io, router, options, &router_mutex);
        std::optional<switchboard::basic_tcp_server<switchboard::plain_stream, switchboard::websocket::websocket_protocol>> ws;
        if (s.ws_port) setup_websocket(ws.emplace(io, router, options, &router_mutex), server, router, s);
        exit_code = serve(server, ws ? &*ws : nullptr, io, s, address, report, cluster_start, cluster_stop);
    }
    if (cluster_thread.joinable()) cluster_thread.join(); // stop() ends its io_context's work
    // (Stopped again, idempotent, in case serve() returned before its stop handler ran: the
    // router and the store the pending answers call are still there.)
    if (inbox_connection) inbox_connection->stop();
    // Stopped: every connection is closed and no I/O thread runs. The store commits what is
    // queued, the last completions run (they call into the router), and then the router goes
    // before the store it refers to (router_options::inbox).
    if (sqlite_store) {
        std::lock_guard<std::mutex> lock(router_mutex);
        sqlite_store->flush();
        (void)sqlite_store->run_completions();
        const switchboard::sqlite_inbox_stats st = sqlite_store->stats();
        std::cerr << "tcp_chat: " << s.sqlite_path << ": this run " << st.committed_appends << " message(s) committed in "
                  << st.commits << " transaction(s), " << st.failed_appends << " failed";
        if (st.last_error != switchboard::status::ok)
            std::cerr << " (last error: " << to_string(st.last_error) << ", " << st.last_error_message << ")";
        std::cerr << "; " << sqlite_store->view().message_count() << " message(s) stored now\n";
    }
    return exit_code;
}
