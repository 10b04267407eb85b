// ws_loadgen: an end-to-end WebSocket load generator for the figures of issue #13, built on
// Boost.Beast and nothing of switchboard (bench/load_common.hpp is the load generators' shared
// payload layout, histogram and report helpers, not library code). It speaks three dialects:
//
//   switchboard.json  tcp_chat --ws-port: `{"type":"msg","to":..,"text":..}` in,
//                     `{"type":"msg","from":..,"text":..}` out (docs/protocol.md, "JSON wire format")
//   plainws           the same JSON against bench/ws_peers/ws_server.js (subprotocol switchboard.json)
//   socketio          Engine.IO v4 / Socket.IO 4 over the websocket transport against
//                     bench/ws_peers/socketio_seed.js: `0{..}` open, `40` connect, `2`/`3` ping/pong,
//                     events as `42["event",data]`, acknowledgements `43<id>[..]`
//
// Modes (like bench/loadgen, docs/loadgen.md): `pairs` (N senders, each keeping W messages in
// flight to its own receiver), `fanout` (S publishers, a room of M members) and `idle` (C
// registered connections, the server's RSS growth per connection). Every delivery is checked:
// right sender (and room), payload intact, sequence numbers consecutive (nothing lost, reordered
// or duplicated). Usage: `ws_loadgen --help`; method: docs/performance.md, "WebSocket (issue #13)".
//
// How it stays out of the way (one io_context thread):
// - Beast does the upgrade (HTTP, Sec-WebSocket-Accept, subprotocol) and reads messages
//   (`async_read`: frame parsing, control frames, UTF-8 validation) from a
//   `buffered_read_stream` that reads up to 64 KiB per system call (Beast's own read buffer
//   takes at most 1,536 bytes per read).
// - Writes bypass Beast's one-message-per-system-call `async_write`: a sender writes a batch of
//   masked frames (RFC 6455 5.2-5.3, a fresh masking key per frame) with one `async_write` on the
//   socket. Beast's stream never writes here on its own: none of the servers pings, and the
//   connections are not closed with a close handshake but dropped at the end.
// - Message bodies come from a template with only the digits rewritten; a received message is
//   checked in place (fields found with memmem, digits compared as in bench/loadgen).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "load_common.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// Beast's websocket::stream needs a teardown for its next layer (used only if the server sends a
// close frame); the buffered stream forwards to the socket's.
namespace boost::beast {
template <class Stream, class Buffer>
void teardown(role_type role, buffered_read_stream<Stream, Buffer>& s, boost::system::error_code& ec) {
    using websocket::teardown;
    teardown(role, s.next_layer(), ec);
}
template <class Stream, class Buffer, class Handler>
void async_teardown(role_type role, buffered_read_stream<Stream, Buffer>& s, Handler&& h) {
    using websocket::async_teardown;
    async_teardown(role, s.next_layer(), std::forward<Handler>(h));
}
} // namespace boost::beast

namespace {

using namespace sbload;

constexpr const char* usage_text = R"(usage: ws_loadgen MODE [options]

End-to-end WebSocket load generator (Boost.Beast) for issue #13. Every delivery is checked;
exit status 0 only when all checked out (1: a check failed, an error answer, a connection
failed; 2: bad usage).

modes:
  pairs    N sender/receiver pairs; each sender keeps W messages in flight to its receiver
  fanout   S publishers send to a room of M members (each its own connection)
  idle     C registered idle connections; the server's RSS growth per connection

options:
  --protocol P           switchboard.json (default), plainws or socketio
  --host HOST            server address (default 127.0.0.1)
  --port PORT            server port (default 8080)
  --ports P1,P2,...      cluster nodes instead of one server: pair i's sender on node i mod N,
                         its receiver on node i+1 mod N; fan-out members round-robin, the
                         publishers on the first
  --path PATH            request target (default /ws; socketio: /socket.io/?EIO=4&transport=websocket)
  --duration SECONDS     measured time after the warmup (default 5; idle: time before the
                         second RSS reading, default 1)
  --warmup SECONDS       traffic that is checked but not counted (default 1)
  --payload BYTES        message text size, 27 or more (default 64)
  --window W             messages in flight per sender (default 256)
  --batch B              a sender writes when at least B slots of its window are free
                         (default max(1, W/8)); one system call per write
  --prefix NAME          prefix of user and room names (default wl<run-id>)
  --timeout SECONDS      fail when setup or delivery makes no progress this long (default 10)
  --server-pid PID       read the server's VmRSS and CPU time from /proc/PID
  --json                 one JSON object on stdout instead of the text report
  pairs:  --pairs N      (default 100)
  fanout: --members M    (default 1000)   --senders S (default 1)
  idle:   --conns C      (default 10000)  --per-source N connections per 127.0.0.x (default 25000)
  --connect-concurrency N   connections being set up at the same time (default 256)
  --reader R             how traffic is read once setup is done: raw (default: frames parsed
                         from 64 KiB socket reads, one clock reading per read) or beast (every
                         message through Beast's async_read, as during setup)
)";

enum class dialect { json, plainws, socketio };
enum class run_mode { pairs, fanout, idle };
enum class role : std::uint8_t { sender, receiver, publisher, member, idle };

struct options {
    run_mode mode = run_mode::pairs;
    dialect proto = dialect::json;
    std::string host = "127.0.0.1";
    unsigned short port = 8080;
    std::vector<unsigned short> ports; // --ports: cluster nodes (empty: just --port)
    std::string path;
    double duration = -1;
    double warmup = 1;
    std::size_t payload = 64;
    std::size_t window = 256;
    std::size_t batch = 0;
    std::string prefix;
    double timeout = 10;
    long server_pid = 0;
    bool json = false;
    std::size_t pairs = 100;
    std::size_t members = 1000;
    std::size_t senders = 1;
    std::size_t conns = 10000;
    std::size_t per_source = 25000;
    std::size_t connect_concurrency = 256;
    bool raw_reader = true; // --reader raw (default) or beast
};

// Who gets each room message: every member, and every publisher but its sender (publishers are
// members of the room too; a room message goes to every member but the sender).
std::size_t room_receivers(const options& o) { return o.members + o.senders - 1; }

const char* dialect_name(dialect d) {
    switch (d) {
    case dialect::json: return "switchboard.json";
    case dialect::plainws: return "plainws";
    case dialect::socketio: return "socketio";
    }
    return "?";
}

// ---- process figures ----------------------------------------------------------------------------

i64 read_rss_kib(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, 6, "VmRSS:") == 0) return std::atoll(line.c_str() + 6);
    return -1;
}

// CPU time (user + system) of a process in seconds, or -1.
double read_cpu_s(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!in || !std::getline(in, stat)) return -1;
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream fields(stat.substr(paren + 1));
    std::string field;
    i64 utime = -1, stime = -1;
    for (int i = 3; fields >> field; ++i) {
        if (i == 14) utime = std::atoll(field.c_str());
        if (i == 15) {
            stime = std::atoll(field.c_str());
            break;
        }
    }
    if (utime < 0 || stime < 0) return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double self_cpu_s() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

// ---- frames -------------------------------------------------------------------------------------

// A fast generator of masking keys (xorshift32): RFC 6455 5.3 wants a fresh key per frame.
struct mask_keys {
    std::uint32_t s;
    std::uint32_t next() noexcept {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return s;
    }
};

// Appends one masked client frame carrying `body` to `out` (FIN, MASK; opcode 1: text, 0xA: pong).
void append_masked_text(std::string& out, std::string_view body, mask_keys& keys, unsigned opcode = 1) {
    const std::size_t n = body.size();
    char head[14];
    std::size_t h = 0;
    head[h++] = static_cast<char>(0x80 | opcode);
    if (n < 126) {
        head[h++] = static_cast<char>(0x80 | n);
    } else if (n <= 0xFFFF) {
        head[h++] = static_cast<char>(0x80 | 126);
        head[h++] = static_cast<char>(n >> 8);
        head[h++] = static_cast<char>(n & 0xFF);
    } else {
        head[h++] = static_cast<char>(0x80 | 127);
        for (int i = 7; i >= 0; --i) head[h++] = static_cast<char>((static_cast<u64>(n) >> (8 * i)) & 0xFF);
    }
    const std::uint32_t key = keys.next();
    std::memcpy(head + h, &key, 4); // the key's bytes in memory order are the key on the wire
    h += 4;
    const std::size_t at = out.size();
    out.resize(at + h + n);
    char* p = out.data() + at;
    std::memcpy(p, head, h);
    p += h;
    u64 key8;
    std::memcpy(&key8, &key, 4);
    std::memcpy(reinterpret_cast<char*>(&key8) + 4, &key, 4);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        u64 v;
        std::memcpy(&v, body.data() + i, 8);
        v ^= key8;
        std::memcpy(p + i, &v, 8);
    }
    const auto* kb = reinterpret_cast<const unsigned char*>(&key);
    for (; i < n; ++i) p[i] = static_cast<char>(static_cast<unsigned char>(body[i]) ^ kb[i & 3]);
}

// The string value of `"field":"` in `m` (up to the next quote; the payloads and names used here
// hold neither quotes nor escapes), or nullopt.
std::optional<std::string_view> field(std::string_view m, std::string_view key) {
    const void* at = ::memmem(m.data(), m.size(), key.data(), key.size());
    if (!at) return std::nullopt;
    const std::size_t from = static_cast<std::size_t>(static_cast<const char*>(at) - m.data()) + key.size();
    const void* end = std::memchr(m.data() + from, '"', m.size() - from);
    if (!end) return std::nullopt;
    return m.substr(from, static_cast<std::size_t>(static_cast<const char*>(end) - (m.data() + from)));
}

// ---- the run --------------------------------------------------------------------------------------

// A socket with the io_context's own executor type, not the polymorphic `any_io_executor` of
// `tcp::socket`: copying and destroying that executor in every composed operation was a quarter
// of the client's time per message.
using executor_t = net::io_context::executor_type;
using socket_t = net::basic_stream_socket<tcp, executor_t>;
using buffered_t = beast::buffered_read_stream<socket_t, beast::flat_buffer>;
using ws_t = websocket::stream<buffered_t>;

struct connection;

struct run_state {
    options o;
    net::io_context io{1};
    std::vector<tcp::endpoint> servers; // one per node (--ports), else just --port
    std::vector<std::unique_ptr<connection>> conns;
    std::vector<connection*> senders; // senders or publishers
    std::string padding;              // the payload's filler after the digits
    std::string room;
    bool failed = false;
    std::vector<std::string> errors;
    // phases
    std::size_t next_to_open = 0, opening = 0, registered = 0, joined = 0;
    u64 join_events = 0;     // fan-out: join events received (each join is told to the members there)
    i64 last_join_event = 0; // when the last one arrived
    bool traffic = false, sending = false, finished = false;
    i64 setup_start = 0, traffic_start = 0, warm_end = 0, send_end = 0;
    // counting
    u64 delivered_total = 0, counted = 0;
    i64 last_counted_rx = 0;
    histogram latency;
    u64 progress_seen = 0;
    i64 progress_at = 0;
    net::steady_timer ticker{io};
    // figures
    double client_cpu_warm = -1, client_cpu_end = -1, server_cpu_warm = -1, server_cpu_end = -1;
    i64 rss_before = -1, rss_after = -1;
    double setup_s = 0;

    void fail(std::string why) {
        if (failed) return;
        failed = true;
        errors.push_back(std::move(why));
        io.stop();
    }
    void on_registered();
    void on_joined();
    void settle_then_start();
    void start_traffic();
    void tick();
    bool drained() const;
};

struct connection {
    run_state* g;
    std::size_t index;
    role rl;
    std::string name;
    std::size_t node = 0; // which of run_state::servers it connects to
    ws_t ws;
    beast::flat_buffer rbuf;
    websocket::response_type res;
    std::string wbuf, wflight;
    bool writing = false;
    mask_keys keys;
    bool reg_done = false;
    bool switching = false;       // the Beast read is being cancelled for the raw reader
    std::vector<char> raw;        // the raw reader's buffer
    std::size_t raw_have = 0;     // bytes in it
    // sender / publisher
    connection* peer = nullptr;    // pairs: the receiver of a sender, the sender of a receiver
    std::string body;              // the message template (unmasked)
    std::size_t payload_at = 0;    // where the payload starts in `body`
    u64 sent = 0, done = 0;        // sent; delivered (pairs) or completed (fan-out), in order
    std::vector<std::uint32_t> remaining; // fan-out: members still to get seq % W
    std::size_t publisher_index = 0;
    // receiver / member
    u64 next_seq = 0;              // pairs
    std::vector<u64> next_seqs;    // fan-out, per publisher
    std::string expect_prefix;     // the start of a data message
    std::string exact_head, exact_tail; // a data message as the servers write it, around the payload
    std::string_view expect_from;  // pairs: the sender's name

    connection(run_state& gs, std::size_t i, role r, std::string n)
        : g(&gs), index(i), rl(r), name(std::move(n)), ws(gs.io.get_executor()), keys{static_cast<std::uint32_t>(0x9E3779B9u ^ (i * 2654435761u)) | 1u} {
        ws.next_layer().capacity(g->o.mode == run_mode::idle ? 4096 : 65536);
        ws.read_message_max(1 << 20);
        ws.auto_fragment(false);
    }

    socket_t& sock() { return ws.next_layer().next_layer(); }
    const options& o() const { return g->o; }

    std::string who() const {
        static constexpr const char* roles[] = {"sender ", "receiver ", "publisher ", "member ", "connection "};
        return roles[static_cast<std::size_t>(rl)] + name;
    }

    void open() {
        boost::system::error_code ec;
        if (g->servers[node].address().is_loopback() && g->servers[node].address().is_v4() && index >= o().per_source) {
            const auto k = static_cast<std::uint32_t>(index / o().per_source);
            const net::ip::address_v4 src((127u << 24) + 1u + k);
            sock().open(tcp::v4(), ec);
            if (!ec) {
                const int one = 1;
                ::setsockopt(sock().native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                sock().bind(tcp::endpoint(src, 0), ec);
            }
            if (ec) return g->fail("cannot bind source address for " + who() + ": " + ec.message());
        }
        sock().async_connect(g->servers[node], [this](const boost::system::error_code& e) { on_connected(e); });
    }

    void on_connected(const boost::system::error_code& ec) {
        if (g->failed) return;
        if (ec) return g->fail("cannot connect " + who() + ": " + ec.message());
        sock().set_option(tcp::no_delay(true));
        const bool sio = o().proto == dialect::socketio;
        if (!sio)
            ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
                req.set(beast::http::field::sec_websocket_protocol, "switchboard.json");
            }));
        const std::string host = o().host + ":" + std::to_string(g->servers[node].port());
        ws.async_handshake(res, host, o().path, [this](const boost::system::error_code& e) { on_handshake(e); });
    }

    void on_handshake(const boost::system::error_code& ec) {
        if (g->failed) return;
        if (ec) return g->fail("WebSocket upgrade of " + who() + " failed: " + ec.message());
        if (o().proto != dialect::socketio && res[beast::http::field::sec_websocket_protocol] != "switchboard.json")
            return g->fail("the server did not accept the subprotocol switchboard.json");
        res = {};
        --g->opening;
        g->progress_at = now_ns();
        open_more(*g);
        if (o().proto != dialect::socketio) send_text("{\"type\":\"register\",\"user\":\"" + name + "\"}");
        read();
    }

    static void open_more(run_state& gs) {
        while (!gs.failed && gs.next_to_open < gs.conns.size() && gs.opening < gs.o.connect_concurrency) {
            ++gs.opening;
            gs.conns[gs.next_to_open++]->open();
        }
    }

    // ---- writing

    void send_text(std::string_view text) {
        append_masked_text(wbuf, text, keys);
        flush();
    }

    void flush() {
        if (writing || wbuf.empty() || g->failed) return;
        writing = true;
        wflight.swap(wbuf);
        wbuf.clear();
        net::async_write(sock(), net::buffer(wflight), [this](const boost::system::error_code& ec, std::size_t) {
            writing = false;
            if (g->failed) return;
            if (ec) {
                if (g->finished) return;
                return g->fail("write to " + who() + " failed: " + ec.message());
            }
            if (rl == role::sender || rl == role::publisher) top_up();
            flush();
        });
    }

    // A sender writes when at least `batch` slots of its window are free: one frame per free slot,
    // all in one write, all with the same send time.
    void top_up() {
        if (!g->sending || writing) return;
        const u64 in_flight = sent - done;
        const u64 free = o().window - in_flight;
        if (free == 0 || (free < o().batch && in_flight > 0)) return; // before the clock: called per delivery
        const i64 now = now_ns();
        if (now >= g->send_end) return;
        char* const digits = body.data() + payload_at;
        put_digits(digits + seq_digits + 1, static_cast<u64>(now), ts_digits);
        for (u64 k = 0; k < free; ++k) {
            put_digits(digits, sent, seq_digits);
            if (rl == role::publisher) remaining[sent % o().window] = static_cast<std::uint32_t>(room_receivers(o()));
            append_masked_text(wbuf, body, keys);
            ++sent;
        }
        flush();
    }

    // ---- reading

    void read() {
        ws.async_read(rbuf, [this](const boost::system::error_code& ec, std::size_t) {
            if (g->failed || g->finished) return;
            if (ec && switching) return start_raw();
            if (ec) {
                std::string why = "the server closed the connection of " + who() + ": " + ec.message();
                if (ws.reason().code != websocket::close_code::none)
                    why += " (close code " + std::to_string(static_cast<unsigned>(ws.reason().code)) + " " +
                           std::string(ws.reason().reason.c_str()) + ")";
                return g->fail(why);
            }
            const auto* d = static_cast<const char*>(rbuf.data().data());
            on_message(std::string_view(d, rbuf.size()));
            rbuf.consume(rbuf.size());
            if (!g->failed && !g->finished) read();
        });
    }

    // After setup (nothing in flight), traffic is read without Beast: cancel its pending read and
    // parse frames from large socket reads here. Beast has consumed every byte it read (the last
    // message was complete); what its buffered stream holds beyond that is taken over.
    void switch_to_raw() {
        if (!o().raw_reader) return;
        switching = true;
        boost::system::error_code ec;
        sock().cancel(ec);
    }

    void start_raw() {
        raw.resize(65536);
        auto& pending = ws.next_layer().buffer();
        raw_have = net::buffer_copy(net::buffer(raw), pending.data());
        pending.consume(raw_have);
        if (raw_have) on_raw(now_ns());
        if (!g->failed) read_raw();
    }

    void read_raw() {
        if (raw_have == raw.size()) raw.resize(raw.size() * 2); // a frame bigger than the buffer
        sock().async_read_some(net::buffer(raw.data() + raw_have, raw.size() - raw_have),
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                   if (g->failed || g->finished) return;
                                   if (ec) return g->fail("the server closed the connection of " + who() + ": " + ec.message());
                                   raw_have += n;
                                   on_raw(now_ns());
                                   if (!g->failed && !g->finished) read_raw();
                               });
    }

    // Frames from the server (RFC 6455 5.2): unmasked; text messages in one frame each (the
    // servers measured here never fragment); pings answered; a close ends the run.
    void on_raw(i64 rx) {
        std::size_t at = 0;
        const auto* b = reinterpret_cast<const unsigned char*>(raw.data());
        while (raw_have - at >= 2) {
            const unsigned op = b[at] & 0x0F;
            const bool fin = (b[at] & 0x80) != 0;
            if (b[at + 1] & 0x80) return g->fail("a masked frame from the server to " + who());
            std::size_t head = 2;
            u64 len = b[at + 1] & 0x7F;
            if (len == 126) {
                if (raw_have - at < 4) break;
                len = (u64{b[at + 2]} << 8) | b[at + 3];
                head = 4;
            } else if (len == 127) {
                if (raw_have - at < 10) break;
                len = 0;
                for (int k = 0; k < 8; ++k) len = (len << 8) | b[at + 2 + k];
                head = 10;
            }
            if (len > (u64{1} << 24)) return g->fail("a frame of " + std::to_string(len) + " bytes to " + who());
            if (raw_have - at < head + len) {
                if (head + len > raw.size()) raw.resize(head + len);
                b = reinterpret_cast<const unsigned char*>(raw.data());
                break;
            }
            const std::string_view body(raw.data() + at + head, static_cast<std::size_t>(len));
            at += head + static_cast<std::size_t>(len);
            if (op == 1 && fin) {
                on_message(body, rx);
            } else if (op == 9) {
                append_masked_text(wbuf, body, keys, 0xA);
                flush();
            } else if (op == 8) {
                const unsigned code = body.size() >= 2 ? (unsigned{static_cast<unsigned char>(body[0])} << 8) |
                                                             static_cast<unsigned char>(body[1])
                                                       : 1005;
                return g->fail("the server closed the connection of " + who() + " (close code " + std::to_string(code) +
                               (body.size() > 2 ? " " + std::string(body.substr(2)) : std::string()) + ")");
            } else if (op != 0xA) {
                return g->fail("unexpected frame (opcode " + std::to_string(op) + (fin ? "" : ", fragmented") + ") to " +
                               who() + "; try --reader beast");
            }
            if (g->failed) return;
        }
        if (at) {
            std::memmove(raw.data(), raw.data() + at, raw_have - at);
            raw_have -= at;
        }
    }

    void on_message(std::string_view m, i64 rx = -1) {
        if (!expect_prefix.empty() && m.size() > expect_prefix.size() &&
            std::memcmp(m.data(), expect_prefix.data(), expect_prefix.size()) == 0)
            return on_data(m, rx < 0 ? now_ns() : rx);
        if (o().proto == dialect::socketio) return on_socketio_control(m);
        const auto type = field(m, "\"type\":\"");
        if (!type) return g->fail("unexpected message to " + who() + ": " + std::string(m.substr(0, 200)));
        if (*type == "info") return; // greeting notices
        if (*type == "join") {       // the room's join events: traffic waits until they stop
            g->last_join_event = g->progress_at = now_ns();
            ++g->join_events;
            return;
        }
        if (*type == "ok") {
            const auto command = field(m, "\"command\":\"");
            if (command && *command == "register" && !reg_done) {
                reg_done = true;
                return g->on_registered();
            }
            if (command && *command == "join") return g->on_joined();
        }
        g->fail("unexpected message to " + who() + ": " + std::string(m.substr(0, 200)));
    }

    void on_socketio_control(std::string_view m) {
        if (m == "2") return send_text("3"); // Engine.IO ping
        if (m.size() >= 1 && m[0] == '0') return send_text("40"); // Engine.IO open: connect the namespace
        if (m.size() >= 2 && m.substr(0, 2) == "40") // Socket.IO connected
            return send_text("421[\"register\",\"" + name + "\"]");
        if (m.substr(0, 3) == "431" && !reg_done) {
            reg_done = true;
            return g->on_registered();
        }
        if (m.substr(0, 3) == "432") return g->on_joined();
        g->fail("unexpected message to " + who() + ": " + std::string(m.substr(0, 200)));
    }

    // A data message: `expect_prefix` matched. Checks sender, payload, sequence number. A message
    // exactly as every server here writes it (fields in the documented order, from the expected
    // sender) is checked by comparing it with that form; any other is taken apart field by field.
    void on_data(std::string_view m, i64 rx) {
        const std::size_t head = exact_head.size(), tail = exact_tail.size();
        if (!exact_head.empty() && m.size() == head + o().payload + tail &&
            std::memcmp(m.data(), exact_head.data(), head) == 0 &&
            std::memcmp(m.data() + head + o().payload, exact_tail.data(), tail) == 0)
            return on_payload(m.substr(head, o().payload), rx, rl == role::receiver ? peer : g->senders.front(),
                              rl == role::receiver ? &next_seq : &next_seqs.front());
        const auto from = field(m, "\"from\":\"");
        const auto text = field(m, "\"text\":\"");
        if (!from || !text) return g->fail("malformed message to " + who() + ": " + std::string(m.substr(0, 200)));
        connection* sender = peer;
        u64* expected = &next_seq;
        if (rl != role::receiver) { // a room message, to a member or another publisher
            const std::string_view pp = g->senders.front()->name;
            const std::size_t stem = pp.size() - 1; // "<prefix>p" + index digits
            std::size_t j = 0;
            if (from->size() <= stem - 0 || from->substr(0, stem) != pp.substr(0, stem) ||
                !parse_number<std::size_t>(from->substr(stem), j, 0, g->senders.size() - 1))
                return g->fail("wrong sender in a room message to " + who() + ": " + std::string(*from));
            sender = g->senders[j];
            expected = &next_seqs[j];
            const auto room = field(m, "\"room\":\"");
            if (!room || *room != g->room) return g->fail("room message to " + who() + " from the wrong room");
        } else if (*from != expect_from) {
            return g->fail("wrong sender in a message to " + who() + ": " + std::string(*from));
        }
        on_payload(*text, rx, sender, expected);
    }

    void on_payload(std::string_view text, i64 rx, connection* sender, u64* expected) {
        if (text.size() != o().payload) return g->fail("corrupted payload to " + who() + ": wrong length");
        const char* p = text.data();
        u64 seq = 0, ts = 0;
        if (!get_digits(p, seq_digits, seq) || p[seq_digits] != ' ' || !get_digits(p + seq_digits + 1, ts_digits, ts) ||
            std::memcmp(p + header_bytes, g->padding.data(), g->padding.size()) != 0)
            return g->fail("corrupted payload to " + who() + ": " + std::string(text));
        if (seq != *expected)
            return g->fail("lost, duplicated or reordered delivery to " + who() + ": expected seq " +
                           std::to_string(*expected) + ", got " + std::to_string(seq));
        if (seq >= sender->sent) return g->fail("delivery of a sequence number never sent to " + who());
        if (static_cast<i64>(ts) > rx) return g->fail("timestamp in the future in a message to " + who());
        ++*expected;
        ++g->delivered_total;
        if (static_cast<i64>(ts) >= g->warm_end) {
            ++g->counted;
            g->last_counted_rx = rx;
            g->latency.record(static_cast<u64>(rx - static_cast<i64>(ts)));
        }
        if (rl == role::receiver) {
            sender->done = seq + 1;
        } else {
            std::uint32_t& left = sender->remaining[seq % o().window];
            if (--left == 0)
                while (sender->done < sender->sent && sender->remaining[sender->done % o().window] == 0) ++sender->done;
        }
        sender->top_up();
    }
};

void run_state::on_registered() {
    ++registered;
    progress_at = now_ns();
    if (registered < conns.size()) return;
    setup_s = static_cast<double>(now_ns() - setup_start) / 1e9;
    if (o.mode == run_mode::idle) {
        // Wait --duration, then read the RSS again.
        ticker.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.duration)));
        ticker.async_wait([this](const boost::system::error_code& ec) {
            if (ec || failed) return;
            if (o.server_pid > 0) rss_after = read_rss_kib(o.server_pid);
            finished = true;
            io.stop();
        });
        return;
    }
    if (o.mode == run_mode::fanout) {
        for (auto& c : conns) {
            if (o.proto == dialect::socketio) c->send_text("422[\"join\",\"" + room + "\"]");
            else c->send_text("{\"type\":\"join\",\"room\":\"" + room + "\"}");
        }
        return;
    }
    start_traffic();
}

void run_state::on_joined() {
    ++joined;
    progress_at = now_ns();
    if (joined < conns.size()) return;
    settle_then_start();
}

// Each join is told to every member already in the room: K(K-1)/2 join events, which a server may
// still be writing when the last `ok join` arrives. Traffic starts once none has arrived for
// 200 ms, so that the measurement does not include them.
void run_state::settle_then_start() {
    if (failed) return;
    const i64 quiet = now_ns() - last_join_event;
    if (quiet >= 200'000'000) return start_traffic();
    ticker.expires_after(std::chrono::nanoseconds(200'000'000 - quiet));
    ticker.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) settle_then_start();
    });
}

void run_state::start_traffic() {
    if (o.mode == run_mode::fanout) setup_s = static_cast<double>(now_ns() - setup_start) / 1e9;
    traffic = sending = true;
    traffic_start = now_ns();
    warm_end = traffic_start + static_cast<i64>(o.warmup * 1e9);
    send_end = warm_end + static_cast<i64>(o.duration * 1e9);
    progress_at = traffic_start;
    for (auto& c : conns) c->switch_to_raw();
    for (connection* s : senders) s->top_up();
    tick();
}

bool run_state::drained() const {
    for (const connection* s : senders)
        if (s->done != s->sent) return false;
    return true;
}

// Every 10 ms: CPU readings at the phase boundaries, the stall watchdog, the end of the run.
void run_state::tick() {
    ticker.expires_after(std::chrono::milliseconds(10));
    ticker.async_wait([this](const boost::system::error_code& ec) {
        if (ec || failed) return;
        const i64 now = now_ns();
        if (client_cpu_warm < 0 && now >= warm_end) {
            client_cpu_warm = self_cpu_s();
            if (o.server_pid > 0) server_cpu_warm = read_cpu_s(o.server_pid);
        }
        if (sending && now >= send_end) {
            sending = false;
            client_cpu_end = self_cpu_s();
            if (o.server_pid > 0) server_cpu_end = read_cpu_s(o.server_pid);
        }
        if (delivered_total != progress_seen) {
            progress_seen = delivered_total;
            progress_at = now;
        }
        if (!sending && drained()) {
            finished = true;
            io.stop();
            return;
        }
        if (now - progress_at > static_cast<i64>(o.timeout * 1e9)) {
            u64 missing = 0;
            for (const connection* s : senders) missing += s->sent - s->done;
            return fail("no delivery for " + fixed(o.timeout, 0) + " s; " + std::to_string(missing) +
                        " message(s) still in flight");
        }
        tick();
    });
}

std::string ports_json(const options& o) {
    if (o.ports.empty()) return {};
    std::string j = ",\"ports\":[";
    for (std::size_t i = 0; i < o.ports.size(); ++i) j += (i ? "," : "") + std::to_string(o.ports[i]);
    return j + "]";
}

bool parse_args(int argc, char** argv, options& o) {
    if (argc < 2) return false;
    const std::string_view m = argv[1];
    if (m == "pairs") o.mode = run_mode::pairs;
    else if (m == "fanout") o.mode = run_mode::fanout;
    else if (m == "idle") o.mode = run_mode::idle;
    else return false;
    constexpr std::size_t big = std::size_t{1} << 30;
    for (int i = 2; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--json") {
            o.json = true;
            continue;
        }
        if (i + 1 >= argc) return false;
        const std::string_view v = argv[++i];
        bool ok = true;
        if (a == "--protocol") {
            if (v == "switchboard.json" || v == "json") o.proto = dialect::json;
            else if (v == "plainws") o.proto = dialect::plainws;
            else if (v == "socketio") o.proto = dialect::socketio;
            else ok = false;
        } else if (a == "--host") o.host = std::string(v);
        else if (a == "--port") ok = parse_number<unsigned short>(v, o.port, 1, 65535);
        else if (a == "--ports") ok = parse_ports(v, o.ports);
        else if (a == "--path") o.path = std::string(v);
        else if (a == "--duration") ok = parse_seconds(v, o.duration, 0);
        else if (a == "--warmup") ok = parse_seconds(v, o.warmup, 0);
        else if (a == "--payload") ok = parse_number<std::size_t>(v, o.payload, header_bytes, 60000);
        else if (a == "--window") ok = parse_number<std::size_t>(v, o.window, 1, 1u << 20);
        else if (a == "--batch") ok = parse_number<std::size_t>(v, o.batch, 1, 1u << 20);
        else if (a == "--prefix") o.prefix = std::string(v);
        else if (a == "--timeout") ok = parse_seconds(v, o.timeout, 0.1);
        else if (a == "--server-pid") ok = parse_number<long>(v, o.server_pid, 1, 1L << 30);
        else if (a == "--pairs") ok = parse_number<std::size_t>(v, o.pairs, 1, big);
        else if (a == "--members") ok = parse_number<std::size_t>(v, o.members, 1, big);
        else if (a == "--senders") ok = parse_number<std::size_t>(v, o.senders, 1, 1000);
        else if (a == "--conns") ok = parse_number<std::size_t>(v, o.conns, 1, big);
        else if (a == "--per-source") ok = parse_number<std::size_t>(v, o.per_source, 1, big);
        else if (a == "--connect-concurrency") ok = parse_number<std::size_t>(v, o.connect_concurrency, 1, big);
        else if (a == "--reader") {
            if (v == "raw") o.raw_reader = true;
            else if (v == "beast") o.raw_reader = false;
            else ok = false;
        }
        else ok = false;
        if (!ok) {
            std::cerr << "ws_loadgen: bad option or value: " << a << " " << v << "\n";
            return false;
        }
    }
    if (o.duration < 0) o.duration = o.mode == run_mode::idle ? 1 : 5;
    if (o.batch == 0) o.batch = std::max<std::size_t>(1, o.window / 8);
    o.batch = std::min(o.batch, o.window);
    if (o.path.empty()) o.path = o.proto == dialect::socketio ? "/socket.io/?EIO=4&transport=websocket" : "/ws";
    if (o.prefix.empty()) {
        static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        u64 x = static_cast<u64>(now_ns()) ^ (static_cast<u64>(::getpid()) << 20);
        o.prefix = "wl";
        for (int k = 0; k < 5; ++k, x /= 36) o.prefix += alphabet[x % 36];
    }
    return true;
}

std::string report_json(const run_state& g) {
    const options& o = g.o;
    const bool traffic = o.mode != run_mode::idle;
    std::string j = "{\"mode\":\"";
    j += o.mode == run_mode::pairs ? "pairs" : o.mode == run_mode::fanout ? "fanout" : "idle";
    j += "\",\"ok\":" + std::string(g.failed ? "false" : "true");
    j += ",\"params\":{\"protocol\":\"" + std::string(dialect_name(o.proto)) + "\",\"host\":" + json_string(o.host) +
         ",\"port\":" + std::to_string(o.port) + ports_json(o) + ",\"path\":" + json_string(o.path) +
         ",\"payload\":" + std::to_string(o.payload) + ",\"window\":" + std::to_string(o.window) +
         ",\"batch\":" + std::to_string(o.batch) + ",\"warmup_s\":" + fixed(o.warmup, 3) +
         ",\"duration_s\":" + fixed(o.duration, 3) + ",\"prefix\":" + json_string(o.prefix) +
         ",\"reader\":\"" + (o.raw_reader ? "raw" : "beast") + "\"";
    if (o.mode == run_mode::pairs) j += ",\"pairs\":" + std::to_string(o.pairs);
    if (o.mode == run_mode::fanout) j += ",\"members\":" + std::to_string(o.members) + ",\"senders\":" + std::to_string(o.senders);
    if (o.mode == run_mode::idle) j += ",\"conns\":" + std::to_string(o.conns);
    j += "},\"setup_s\":" + fixed(g.setup_s, 3);
    if (traffic) {
        const double measured = g.last_counted_rx > g.warm_end ? static_cast<double>(g.last_counted_rx - g.warm_end) / 1e9 : 0;
        const double rate = measured > 0 ? static_cast<double>(g.counted) / measured : 0;
        j += ",\"delivered\":" + std::to_string(g.counted) + ",\"measured_s\":" + fixed(measured, 3);
        if (o.mode == run_mode::pairs) {
            j += ",\"msgs_per_s\":" + fixed(rate, 0);
        } else {
            j += ",\"messages\":" + std::to_string(g.counted / room_receivers(o)) +
                 ",\"msgs_per_s\":" + fixed(rate / static_cast<double>(room_receivers(o)), 0) +
                 ",\"deliveries_per_s\":" + fixed(rate, 0);
        }
        j += ",\"latency_us\":" + latency_json(g.latency) + ",\"delivered_total\":" + std::to_string(g.delivered_total);
        const double wall = static_cast<double>(g.send_end - g.warm_end) / 1e9;
        // CPU of both processes over the sending window (warmup end to send end): a process at
        // about 100% is the bottleneck; CPU per delivery does not depend on other load as much.
        const double sent_in_window = static_cast<double>(g.counted);
        if (g.client_cpu_warm >= 0 && g.client_cpu_end >= 0 && wall > 0) {
            const double cpu = g.client_cpu_end - g.client_cpu_warm;
            j += ",\"client_cpu_pct\":" + fixed(100 * cpu / wall, 1);
            if (sent_in_window > 0) j += ",\"client_cpu_us_per_delivery\":" + fixed(1e6 * cpu / sent_in_window, 3);
        }
        if (g.server_cpu_warm >= 0 && g.server_cpu_end >= 0 && wall > 0) {
            const double cpu = g.server_cpu_end - g.server_cpu_warm;
            j += ",\"server_cpu_pct\":" + fixed(100 * cpu / wall, 1);
            if (sent_in_window > 0) j += ",\"server_cpu_us_per_delivery\":" + fixed(1e6 * cpu / sent_in_window, 3);
        }
    } else {
        j += ",\"registered\":" + std::to_string(g.registered);
        if (g.rss_before >= 0 && g.rss_after >= 0) {
            j += ",\"server_rss_before_kib\":" + std::to_string(g.rss_before) +
                 ",\"server_rss_after_kib\":" + std::to_string(g.rss_after) + ",\"server_rss_per_conn_bytes\":" +
                 fixed(static_cast<double>(g.rss_after - g.rss_before) * 1024.0 / static_cast<double>(o.conns), 0);
        }
    }
    j += ",\"errors\":" + std::to_string(g.errors.size()) + ",\"error_messages\":[";
    for (std::size_t i = 0; i < g.errors.size(); ++i) j += (i ? "," : "") + json_string(g.errors[i]);
    return j + "]}";
}

std::string report_text(const std::string& json_report, const run_state& g) {
    const options& o = g.o;
    std::string t = "ws_loadgen " + std::string(o.mode == run_mode::pairs ? "pairs" : o.mode == run_mode::fanout ? "fanout" : "idle") +
                    " -> " + o.host + ":" + std::to_string(o.port) + o.path + " (" + dialect_name(o.proto) + ")\n";
    if (o.mode == run_mode::idle) {
        t += "  registered  " + with_commas(g.registered) + " of " + with_commas(o.conns) + " in " + fixed(g.setup_s, 2) + " s\n";
        if (g.rss_before >= 0 && g.rss_after >= 0)
            t += "  server RSS  " + with_commas(static_cast<u64>(g.rss_before)) + " KiB before, " +
                 with_commas(static_cast<u64>(g.rss_after)) + " KiB after: " +
                 fixed(static_cast<double>(g.rss_after - g.rss_before) * 1024.0 / static_cast<double>(o.conns), 0) +
                 " bytes per connection\n";
    } else {
        const double measured = g.last_counted_rx > g.warm_end ? static_cast<double>(g.last_counted_rx - g.warm_end) / 1e9 : 0;
        const double rate = measured > 0 ? static_cast<double>(g.counted) / measured : 0;
        t += "  delivered   " + with_commas(g.counted) + " in " + fixed(measured, 3) + " s (" + with_commas(g.delivered_total) +
             " with warmup, each checked)\n";
        t += "  throughput  " + rate_text(rate) + (o.mode == run_mode::pairs ? " msgs/s\n" : " deliveries/s\n");
        t += "  latency     p50 " + fixed(g.latency.quantile(0.5) / 1e3, 1) + " us, p99 " +
             fixed(g.latency.quantile(0.99) / 1e3, 1) + " us, p99.9 " + fixed(g.latency.quantile(0.999) / 1e3, 1) + " us\n";
    }
    t += "  errors      " + std::to_string(g.errors.size()) + "\n";
    for (const auto& e : g.errors) t += "    " + e + "\n";
    (void)json_report;
    return t;
}

} // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
            std::cout << usage_text;
            return 0;
        }
    auto g = std::make_unique<run_state>();
    options& o = g->o;
    if (!parse_args(argc, argv, o)) {
        std::cerr << usage_text;
        return 2;
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    boost::system::error_code ec;
    const auto address = net::ip::make_address(o.host, ec);
    if (ec) {
        std::cerr << "ws_loadgen: --host must be an IP address\n";
        return 2;
    }
    if (o.ports.empty()) g->servers.emplace_back(address, o.port);
    for (const unsigned short p : o.ports) g->servers.emplace_back(address, p);
    const std::size_t nodes = g->servers.size();
    g->padding = make_padding(o.payload - header_bytes);
    g->room = o.prefix + "room";
    const std::string payload_template = std::string(seq_digits, '0') + " " + std::string(ts_digits, '0') + g->padding;
    const bool sio = o.proto == dialect::socketio;
    auto& conns = g->conns;
    if (o.mode == run_mode::pairs) {
        for (std::size_t i = 0; i < o.pairs; ++i) {
            conns.push_back(std::make_unique<connection>(*g, 2 * i, role::receiver, o.prefix + "r" + std::to_string(i)));
            conns.push_back(std::make_unique<connection>(*g, 2 * i + 1, role::sender, o.prefix + "s" + std::to_string(i)));
            connection& r = *conns[2 * i];
            connection& s = *conns[2 * i + 1];
            s.node = i % nodes;
            r.node = (i + 1) % nodes;
            r.peer = &s;
            s.peer = &r;
            r.expect_from = s.name;
            r.expect_prefix = sio ? "42[\"private message\",{" : "{\"type\":\"msg\",";
            r.exact_head = sio ? "42[\"private message\",{\"from\":\"" + s.name + "\",\"text\":\""
                               : "{\"type\":\"msg\",\"from\":\"" + s.name + "\",\"text\":\"";
            r.exact_tail = sio ? "\"}]" : "\"}";
            s.body = sio ? "42[\"private message\",{\"to\":\"" + r.name + "\",\"text\":\""
                         : "{\"type\":\"msg\",\"to\":\"" + r.name + "\",\"text\":\"";
            s.payload_at = s.body.size();
            s.body += payload_template + (sio ? "\"}]" : "\"}");
            g->senders.push_back(&s);
        }
    } else if (o.mode == run_mode::fanout) {
        for (std::size_t j = 0; j < o.senders; ++j) {
            conns.push_back(std::make_unique<connection>(*g, j, role::publisher, o.prefix + "p" + std::to_string(j)));
            connection& p = *conns.back();
            p.publisher_index = j;
            p.body = sio ? "42[\"say\",{\"room\":\"" + g->room + "\",\"text\":\""
                         : "{\"type\":\"say\",\"room\":\"" + g->room + "\",\"text\":\"";
            p.payload_at = p.body.size();
            p.body += payload_template + (sio ? "\"}]" : "\"}");
            p.remaining.assign(o.window, 0);
            p.next_seqs.assign(o.senders, 0);
            p.expect_prefix = sio ? "42[\"room message\",{" : "{\"type\":\"room\",";
            g->senders.push_back(&p);
        }
        for (std::size_t i = 0; i < o.members; ++i) {
            conns.push_back(std::make_unique<connection>(*g, o.senders + i, role::member, o.prefix + "m" + std::to_string(i)));
            connection& m = *conns.back();
            m.node = i % nodes;
            m.next_seqs.assign(o.senders, 0);
            m.expect_prefix = sio ? "42[\"room message\",{" : "{\"type\":\"room\",";
            if (o.senders == 1) {
                const std::string& p = conns.front()->name;
                m.exact_head = sio ? "42[\"room message\",{\"room\":\"" + g->room + "\",\"from\":\"" + p + "\",\"text\":\""
                                   : "{\"type\":\"room\",\"room\":\"" + g->room + "\",\"from\":\"" + p + "\",\"text\":\"";
                m.exact_tail = sio ? "\"}]" : "\"}";
            }
        }
    } else {
        for (std::size_t i = 0; i < o.conns; ++i)
            conns.push_back(std::make_unique<connection>(*g, i, role::idle, o.prefix + "i" + std::to_string(i)));
    }
    if (o.server_pid > 0) g->rss_before = read_rss_kib(o.server_pid);
    g->setup_start = g->progress_at = now_ns();
    connection::open_more(*g);
    // Setup watchdog: registration and joins must make progress.
    std::function<void()> watch;
    net::steady_timer setup_timer(g->io);
    watch = [&] {
        setup_timer.expires_after(std::chrono::milliseconds(100));
        setup_timer.async_wait([&](const boost::system::error_code& e) {
            if (e || g->failed || g->traffic || g->finished) return;
            if (o.mode == run_mode::idle && g->registered == g->conns.size()) return;
            if (now_ns() - g->progress_at > static_cast<i64>(o.timeout * 1e9))
                return g->fail("setup made no progress for " + fixed(o.timeout, 0) + " s (" + std::to_string(g->registered) +
                               " of " + std::to_string(g->conns.size()) + " registered, " + std::to_string(g->joined) + " joined)");
            watch();
        });
    };
    watch();
    g->io.run();
    if (!g->failed && g->o.mode != run_mode::idle) {
        // Listen 100 ms longer for duplicates or stray messages.
        g->io.restart();
        net::steady_timer grace(g->io);
        g->finished = false;
        grace.expires_after(std::chrono::milliseconds(100));
        grace.async_wait([&](const boost::system::error_code&) {
            g->finished = true;
            g->io.stop();
        });
        g->io.run();
    }
    g->finished = true;
    const std::string j = report_json(*g);
    if (o.json) std::cout << j << "\n";
    else std::cout << report_text(j, *g);
    if (!g->errors.empty() && o.json)
        for (const auto& e : g->errors) std::cerr << "ws_loadgen: error: " << e << "\n";
    return g->failed ? 1 : 0;
}
