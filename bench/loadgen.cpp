// loadgen: an end-to-end load generator for servers speaking the switchboard line protocol v1
// (examples/tcp_chat, or any other implementation), in the spirit of `nats bench` and
// `redis-benchmark`. Usage and output: docs/loadgen.md, or `loadgen --help`.
//
// Modes:
//   pairs   N sender/receiver pairs, `/msg` with a window of W messages in flight per sender.
//   fanout  one publisher, `/say` to a room of K members (each its own connection).
//   idle    C registered idle connections; the server's RSS growth per connection.
//   presence  W watchers `/watch` C users that connect, register and quit over and over
//           (line protocol v1.2); presence transitions per second, their cost in server CPU.
//   stored  N senders `/msg` recipients that are known but offline (line protocol v1.2, a server
//           with its offline inbox); `ok queued` answers per second, W unanswered per sender.
//
// Every delivery is checked (right sender, payload intact, sequence strictly consecutive: no
// loss, no reordering, no duplicates); the exit status is 0 only when all of them checked out.
//
// How it stays out of the way: one event loop per thread (one by default), read buffers that
// grow only on connections that need them (idle connections keep 1 KiB), lines split
// with memchr and checked in place, payloads built from a template with only the digits
// rewritten, one timestamp per write batch and per read, one write system call per batch of
// messages, and a log-linear latency histogram instead of a list of samples.
#include <asio.hpp> // standalone Asio defines ASIO_STANDALONE itself (asio/detail/config.hpp)

#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "load_common.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 // Linux >= 4.2; older headers may lack it
#endif

namespace {

using namespace sbload; // i64, u64, now_ns(), the payload layout, histogram, text and JSON helpers

constexpr const char* usage_text = R"(usage: loadgen MODE [options]

End-to-end load generator for servers speaking the switchboard line protocol v1
(examples/tcp_chat or any other; presence and pairs --acked need v1.2). Every delivery is checked; exit status 0 only when all
checked out (1: a check failed, the server replied err, or a connection failed; 2: bad usage).

modes:
  pairs    N sender/receiver pairs; each sender sends `/msg <receiver> <payload>`
  fanout   one publisher sends `/say <room> <payload>` to a room of K members
  idle     open C registered connections, report the server's RSS growth per connection
  presence W watchers each `/watch` C users, who connect, `/register` and `/quit` over and
           over; reports presence transitions per second (and server CPU per transition)
  stored   N senders each send `/msg <recipient> <payload>` to their own recipient, a known
           user that is offline (registered once and gone before the traffic); reports the
           `ok queued <recipient>` answers per second (the server stored the message; with a
           durable store, committed it)

common options:
  --host HOST            server address or host name (default 127.0.0.1)
  --port PORT            server port (default 7777)
  --ports P1,P2,...      several servers (cluster nodes) on --host instead of one: pair i's
                         sender connects to node i mod N and its receiver to node i+1 mod N
                         (every pair crosses nodes); fanout members go round-robin, the
                         publisher to the first; other connections round-robin
  --duration SECONDS     measured time after the warmup (default 5); in idle mode, how long
                         the connections stay open before the second RSS reading (default 1)
  --messages N           instead of --duration: N counted messages in total, after the warmup
                         (pairs: split over the pairs; fanout: messages published)
  --warmup SECONDS       traffic at the start that is checked but not counted (default 1)
  --payload BYTES        message text size, 27 or more (default 64); it holds the sequence
                         number and the send timestamp, padded with text to the size
  --window W             messages in flight per sender (default 256); a message is in flight
                         until its receiver (fanout: every member) got it (stored: until the
                         server answered it)
  --threads N            event-loop threads (default 1)
  --prefix NAME          prefix of the user and room names (default lg<run-id>)
  --timeout SECONDS      fail when connecting, registering or delivering makes no progress
                         for this long (default 10)
  --server-pid PID       read the server's VmRSS from /proc/PID/status before and after
  --cpu-pids P1,P2,...   presence: the server CPU is the sum over these processes (e.g. every
                         cluster node and redis-server) instead of --server-pid alone
  --json                 print one JSON object on stdout instead of the text report
  --help                 show this help and exit

pairs:   --pairs N       sender/receiver pairs, 2N connections (default 100)
         --acked         at-least-once delivery (line protocol v1.2; the server needs its
                         offline inbox, tcp_chat --offline): receivers send `/ack on`
                         before `/register`, get `dm <seq> <sender> <payload>` (seq checked:
                         1, 2, 3, ... per receiver) and acknowledge cumulatively
         --ack-every N   with --acked: `/ack <seq>` once N messages are unacknowledged, or
                         at once when the receiver has every message sent so far
                         (default 64; keep --window + N below the server's --inbox-max)
fanout:  --members K     room members, each its own connection, plus the publisher (default 1000)
idle:    --conns C       connections (default 10000)
         --sample N      connections asked `/who` at the end, each must be listed (default 100)
         --per-source N  connections per source address; further ones bind 127.0.0.2,
                         127.0.0.3, ... (loopback servers only; default 25000)
presence: --users C      watched users (default 10000); each connects, registers and quits
                         in turn, one connection per cycle
         --watchers W    connections that each watch every user (default 10; 0 measures the
                         churn alone, the baseline); the server needs --max-watches >= C
         --churn N       users connecting or leaving at the same time (default 64)
stored:  --senders N     sender connections, each with its own offline recipient (default 100);
                         the server needs its offline inbox (tcp_chat --offline, or
                         --offline sqlite:PATH) and room for what the run stores (tcp_chat
                         --inbox-max, --inbox-bytes); an `err` answer counts as an error
                         (its text reported) and the run goes on; exit status 1 at the end
advanced:
  --connect-concurrency N  connections being set up at once (default 256)

Progress is printed to stderr once per second when stderr is a terminal. The file-descriptor
limit is raised to its hard limit; a run that needs more connections than that fails at once.
Example:  loadgen pairs --port 7777 --pairs 100 --window 256 --payload 64 --duration 10
)";

enum class run_mode : std::uint8_t { pairs, fanout, idle, presence, stored };

constexpr std::string_view mode_name(run_mode m) {
    switch (m) {
    case run_mode::pairs: return "pairs";
    case run_mode::fanout: return "fanout";
    case run_mode::idle: return "idle";
    case run_mode::presence: return "presence";
    case run_mode::stored: return "stored";
    }
    return "?";
}

struct options {
    run_mode mode = run_mode::pairs;
    bool mode_given = false;
    std::string host = "127.0.0.1";
    unsigned short port = 7777;
    std::vector<unsigned short> ports; // --ports: cluster nodes (empty: just --port)
    double duration_s = 5;
    bool duration_given = false;
    u64 messages = 0; // 0: duration mode
    double warmup_s = 1;
    std::size_t payload = 64;
    std::size_t window = 256;
    unsigned threads = 1;
    std::string prefix; // empty: lg<run-id>
    double timeout_s = 10;
    long server_pid = 0;
    std::vector<long> cpu_pids; // presence: CPU summed over these (default: server_pid)
    bool json = false;
    std::size_t pairs = 100;
    bool acked = false;         // pairs: receivers turn acks on and get `dm <seq> ...`
    std::size_t ack_every = 64; // pairs --acked: acknowledge after this many messages
    std::size_t members = 1000;
    std::size_t conns = 10000;
    std::size_t sample = 100;
    std::size_t per_source = 25000;
    std::size_t connect_concurrency = 256;
    std::size_t users = 10000;   // presence: watched users
    std::size_t watchers = 10;   // presence: connections watching every user
    std::size_t churn = 64;      // presence: users in a connect-register-quit cycle at once
    std::size_t senders = 100;   // stored: senders, each with its own offline recipient
};

constexpr std::size_t max_name_bytes = 40; // longest user or room name (docs/protocol.md, "Names")

// ---- output buffer ----------------------------------------------------------------------------
// A byte buffer that grows without zero-filling (std::string::resize would memset every batch).

class out_buffer {
public:
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] const char* data() const { return data_.get(); }
    void clear() { size_ = 0; }

    // n more bytes at the end, uninitialised, for the caller to fill.
    char* extend(std::size_t n) {
        if (size_ + n > cap_) {
            std::size_t cap = std::max<std::size_t>(cap_ * 2, 256);
            while (cap < size_ + n) cap *= 2;
            std::unique_ptr<char[]> bigger(new char[cap]);
            if (size_) std::memcpy(bigger.get(), data_.get(), size_);
            data_ = std::move(bigger);
            cap_ = cap;
        }
        char* p = data_.get() + size_;
        size_ += n;
        return p;
    }
    out_buffer& operator+=(std::string_view s) {
        std::memcpy(extend(s.size()), s.data(), s.size());
        return *this;
    }
    void erase_front(std::size_t n) {
        std::memmove(data_.get(), data_.get() + n, size_ - n);
        size_ -= n;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

// ---- run state --------------------------------------------------------------------------------

struct conn;
struct pair_state;

// Owner-thread counters that the controller reads: a plain add without a locked instruction.
inline void bump(std::atomic<u64>& a, u64 n) { a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }

struct worker {
    explicit worker(std::size_t i) : id(i), io(1) {}
    std::size_t id;
    asio::io_context io; // declared before conns: connections are destroyed first
    histogram hist;                    // counted deliveries (owner thread; read after join)
    u64 counted = 0;                   // counted deliveries
    i64 last_counted_ns = 0;           // receive time of the last counted delivery
    std::atomic<u64> sent_total{0};    // lines sent (all phases)
    std::atomic<u64> delivered_total{0}; // deliveries checked (all phases)
    std::atomic<u64> acks_total{0};      // `/ack <seq>` lines sent (pairs --acked)
    std::vector<std::unique_ptr<conn>> conns;
    std::deque<conn*> to_open;
    std::size_t opening = 0;
    std::size_t open_limit = 1;
    std::vector<pair_state*> local_pairs;
    std::vector<conn*> deferred;         // stored: senders, opened once every recipient is gone
    std::vector<conn*> subjects;         // presence: this thread's cycling connections
    std::vector<std::size_t> own_users;  // presence: the users this thread cycles (i % threads)
    std::size_t next_user = 0;           // presence: position in own_users of the next one to cycle
    std::atomic<u64> cycles_done{0};     // presence: connect-register-quit cycles completed
    bool started = false; // traffic started on this thread
    std::thread thread;
};

struct pair_state {
    std::size_t index = 0;
    conn* sender = nullptr;
    conn* receiver = nullptr;
    std::string tmpl;       // "/msg <receiver> <payload>\n"
    std::size_t seq_off = 0; // where the payload's digits start in tmpl
    u64 sent = 0;
    u64 answered = 0;        // stored: answers received (ok queued or err), in send order
    std::vector<i64> sent_at; // stored: send time of message i at [i % window] (answers come in order)
    u64 budget = std::numeric_limits<u64>::max(); // counted messages still to send (--messages)
    bool stopping = false;
    bool done = false;
};

struct fanout_state {
    conn* publisher = nullptr;
    std::string room;
    std::string tmpl; // "/say <room> <payload>\n"
    std::size_t seq_off = 0;
    std::uint32_t members = 0;
    std::atomic<u64> sent{0};
    std::atomic<u64> completed{0};                     // messages every member got
    std::unique_ptr<std::atomic<std::uint32_t>[]> got; // per ring slot: members that got seq
    u64 ring_mask = 0; // ring size - 1; the ring (a power of two) holds at least a window
    u64 budget = std::numeric_limits<u64>::max();
    bool stopping = false;
    bool done = false;
    std::atomic<bool> notify_posted{false};
};

// Presence mode: users that connect, register and quit in turn, watched by every watcher.
struct presence_state {
    std::size_t users = 0;
    std::string user_prefix;                         // "<prefix>u"; user i is user_prefix + i
    std::unique_ptr<std::atomic<i64>[]> online_sent; // per user: when its /register was sent
    std::vector<std::uint32_t> cycles;               // per user: cycles completed (owner thread)
    std::vector<char> busy;                          // per user: in a cycle now (owner thread)
    i64 unix_start_ms = 0;                           // wall clock at start: bounds last-seen times
    // Measured window, sampled by the controller at the first tick at or after t_measure and
    // t_end: cycles and presence events completed, the server's CPU time (ticks), and when.
    i64 at_measure_ns = 0, at_end_ns = 0;
    u64 cycles_at_measure = 0, cycles_at_end = 0;
    u64 events_at_measure = 0, events_at_end = 0;
    i64 cpu_at_measure = -1, cpu_at_end = -1;
};

enum class stage : std::uint8_t { setup, join, run, settle, hold, who };

struct run_state {
    options opt;
    asio::ip::tcp::endpoint server;
    std::vector<asio::ip::tcp::endpoint> servers; // one per node (--ports), else {server}
    bool loopback_v4 = false;
    bool multi = false; // more than one thread
    std::string pad;    // payload padding after the header
    std::vector<std::unique_ptr<worker>> workers;

    std::atomic<bool> failed{false};
    std::atomic<bool> finished{false};
    std::mutex error_mutex;
    std::vector<std::string> errors;
    std::atomic<u64> error_count{0};
    error_tally error_kinds; // note_error(): count per kind

    std::size_t conns_total = 0;
    std::size_t source_addresses = 1;
    std::atomic<std::size_t> connected{0};
    std::atomic<std::size_t> registered{0};
    std::atomic<std::size_t> ready{0}; // registered (fanout: and joined)
    std::size_t units_total = 0; // pairs, or 1 publisher
    std::atomic<std::size_t> units_done{0};
    std::size_t recipients_total = 0;             // stored: recipients to register and leave
    std::atomic<std::size_t> recipients_gone{0};  // stored: recipients the server has closed

    // Time plan, written by the controller before traffic starts (published by the post).
    // Atomic only so that other threads may read them without a formal race; relaxed loads are
    // plain loads.
    i64 t_setup_start = 0;
    std::atomic<i64> t_start{0};
    std::atomic<i64> t_measure{never};
    std::atomic<i64> t_end{never};

    std::vector<pair_state> pairs;
    fanout_state fan;
    presence_state pres;

    std::vector<conn*> who_sample;
    std::atomic<std::size_t> who_done{0};
    i64 rss_before_kib = -1;
    i64 rss_after_kib = -1;
    i64 ready_at = 0;

    // controller (worker 0's thread only)
    stage st = stage::setup;
    std::unique_ptr<asio::steady_timer> timer;
    i64 stall_since = 0;
    u64 stall_mark = ~u64{0};
    i64 next_print = 0;
    u64 last_print_delivered = 0;
    i64 last_print_ns = 0;
    i64 settle_until = 0;
    i64 hold_until = 0;
    bool progress = false;
    bool stalled_run = false; // the failure was a delivery stall: list what is missing
};

run_state* g = nullptr;

std::string printable(std::string_view s, std::size_t limit = 200) {
    std::string out;
    for (char ch : s.substr(0, limit)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    if (s.size() > limit) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
}

void stop_all() {
    for (auto& w : g->workers) w->io.stop();
}

// Records a failure and stops every event loop: the first failure ends the run.
void fail(const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(g->error_mutex);
        if (g->errors.size() < 20) g->errors.push_back(message);
    }
    g->error_count.fetch_add(1);
    g->failed.store(true);
    stop_all();
}

// Records an error that does not end the run (stored mode: an `err` answer is one message not
// stored, and the run goes on); the run still fails at the end. The first message of each kind
// (`kind`: the err code) is kept, with a count per kind.
void note_error(std::string_view kind, const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(g->error_mutex);
        if (g->error_kinds.add(kind) && g->errors.size() < 20) g->errors.push_back(message);
    }
    g->error_count.fetch_add(1);
}

// What an `err` answer to /msg most likely means, for the error message.
std::string err_hint(std::string_view line) {
    const auto has = [&](std::string_view p) { return line.substr(0, p.size()) == p; };
    if (has("err not-supported"))
        return " (acks need a server with the offline inbox: tcp_chat --offline)";
    if (has("err inbox-full"))
        return g->opt.mode == run_mode::stored
                   ? " (the recipient's inbox is full: a stored run needs room for everything it sends, "
                     "tcp_chat --inbox-max and --inbox-bytes)"
                   : " (unacknowledged messages filled the receiver's inbox: keep --window + --ack-every below the "
                     "server's tcp_chat --inbox-max)";
    if (has("err user-not-found"))
        return " (the recipient is not a known user: the server needs its offline inbox, tcp_chat --offline)";
    if (has("err store-busy"))
        return " (the durable store's queue of uncommitted messages was full, or its database locked past the busy "
               "timeout: docs/protocol.md G)";
    if (has("err store-full")) return " (the disk holding the server's database is full)";
    if (has("err store-failed")) return " (the server's store failed to commit: see its log)";
    return {};
}

std::string server_text() {
    std::ostringstream s;
    s << g->opt.host << ":";
    if (g->opt.ports.empty()) s << g->opt.port;
    for (std::size_t i = 0; i < g->opt.ports.size(); ++i) s << (i ? "," : "") << g->opt.ports[i];
    return s.str();
}

// ---- connections ------------------------------------------------------------------------------

enum class role : std::uint8_t { sender, receiver, publisher, member, idle, watcher, subject, recipient };
enum class phase : std::uint8_t {
    unopened, connecting, registering, registered, joining, ready, who_wait, who_ok,
    watching, // watcher: /watch sent for every user, waiting for their first state
    online,   // subject: registered (`ok register`), `/quit` already sent
    leaving,  // subject: `ok quit` received, waiting for the server to close
};

void pump(pair_state& p);
void pump_fanout();
void recipient_gone();

struct conn {
    enum class verdict : std::uint8_t { ok, other, failed };

    conn(worker& wk, role r, std::size_t i, std::string n) : w(wk), sock(wk.io), rl(r), index(i), name(std::move(n)) {
        put_digits(next_digits, 0, seq_digits);
    }

    worker& w;
    asio::ip::tcp::socket sock;
    role rl;
    phase ph = phase::unopened;
    bool write_pending = false;
    bool completed_some = false; // member: this read completed a fan-out message
    std::size_t index;
    std::string name;
    std::size_t node = 0; // which of run_state::servers it connects to
    static constexpr std::size_t max_read_buffer = std::size_t{256} << 10;
    std::size_t rcap = 1024;
    std::unique_ptr<char[]> rbuf{new char[1024]};
    std::string partial; // an unfinished line carried over to the next read
    out_buffer out;      // bytes to write
    pair_state* pair = nullptr;
    u64 next = 0;                // receiver/member: next expected sequence number
    char next_digits[seq_digits];  // `next` as the payload writes it (compared, not parsed)
    char last_ts_digits[ts_digits] = {}; // the last send timestamp parsed (a batch shares one)
    u64 last_ts = 0;
    std::string expect_prefix;   // receiver/member: the line before the payload
    std::string dm_from;         // acked receiver: "<sender> ", after "dm <seq> "
    u64 acked = 0;               // acked receiver: the highest seq acknowledged so far
    bool ack_on = false;         // acked receiver: the server answered `ok ack on`
    u64 queued_replies = 0;      // acked sender: `ok queued` (the receiver's ack window was full)
    std::vector<std::uint32_t> events; // watcher: presence events seen per user (odd: online)
    std::size_t initial = 0;           // watcher: users whose first state arrived
    std::size_t user = 0;              // subject: the user of the current cycle
    bool idle_slot = false;            // subject: stopped cycling (the run is ending)
    std::string last_notice;     // the last "* ..." line from the server, quoted if it closes us
    std::string source;          // bound source address, if any

    std::string who() const {
        switch (rl) {
        case role::sender: return "sender " + name;
        case role::receiver: return "receiver " + name;
        case role::publisher: return "publisher " + name;
        case role::member: return "member " + name;
        case role::idle: return "connection " + name;
        case role::watcher: return "watcher " + name;
        case role::subject: return "user connection " + name;
        case role::recipient: return "recipient " + name;
        }
        return name;
    }

    void open() {
        ph = phase::connecting;
        std::error_code ec;
        if (g->loopback_v4 && index >= g->opt.per_source) {
            // Past ~28k connections to one address:port the ephemeral ports of one source address
            // run out; spread over 127.0.0.x. IP_BIND_ADDRESS_NO_PORT defers the port choice to
            // connect(), so the port only has to be unique per (source, destination) pair.
            const auto k = static_cast<std::uint32_t>(index / g->opt.per_source);
            const asio::ip::address_v4 src((127u << 24) + 1u + k);
            source = src.to_string();
            sock.open(asio::ip::tcp::v4(), ec);
            if (!ec) {
                const int one = 1;
                ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                sock.bind(asio::ip::tcp::endpoint(src, 0), ec);
            }
            if (ec) return fail("cannot bind source address " + source + " for " + who() + ": " + ec.message());
        }
        sock.async_connect(g->servers[node], [this](const std::error_code& e) { on_connected(e); });
    }

    void on_connected(const std::error_code& ec) {
        if (g->failed) return;
        if (ec) {
            std::string hint;
            if (ec == asio::error::connection_refused) hint = " (is the server running and listening there?)";
            else if (ec == asio::error::no_descriptors) hint = " (out of file descriptors)";
            else if (ec.value() == EADDRNOTAVAIL)
                hint = " (out of local ports: lower --per-source, or widen net.ipv4.ip_local_port_range)";
            else if (ec == asio::error::timed_out) hint = " (the server's listen backlog may be full)";
            return fail("cannot connect to " + server_text() + (source.empty() ? "" : " from " + source) + ": " +
                        ec.message() + hint);
        }
        std::error_code ignored;
        sock.set_option(asio::ip::tcp::no_delay(true), ignored);
        sock.non_blocking(true, ignored);
        ph = phase::registering;
        if (rl == role::subject) {
            // One write: online at the /register, offline at the /quit, a presence transition each.
            g->pres.online_sent[user].store(now_ns(), std::memory_order_relaxed);
            out += "/register " + name + "\n/quit\n";
            flush();
            return read_more();
        }
        g->connected.fetch_add(1, std::memory_order_relaxed);
        if (acking()) out += "/ack on\n"; // before /register: every dm of the session has a seq
        out += "/register " + name + "\n";
        if (rl == role::recipient) out += "/quit\n"; // known from now on, offline once the server closes
        flush();
        read_more();
    }

    // ---- presence: a subject connection cycles users: connect, /register + /quit, the server
    // closes, next user. Each cycle is two transitions: online, then offline.

    // Starts the next cycle with the next user of this thread that is not in one already; once
    // the measured time is over, the connection stops (the run ends when all have).
    void start_cycle() {
        if (g->failed) return;
        if (now_ns() >= g->t_end.load(std::memory_order_relaxed)) {
            if (!idle_slot) {
                idle_slot = true;
                g->units_done.fetch_add(1);
            }
            return;
        }
        presence_state& ps = g->pres;
        const std::size_t n = w.own_users.size();
        for (std::size_t tries = 0; tries < n; ++tries) {
            const std::size_t u = w.own_users[w.next_user];
            w.next_user = (w.next_user + 1) % n;
            if (ps.busy[u]) continue;
            ps.busy[u] = 1;
            user = u;
            name = ps.user_prefix + std::to_string(u);
            partial.clear();
            last_notice.clear();
            ph = phase::connecting;
            std::error_code ignored;
            sock.close(ignored); // the previous cycle's connection; async_connect opens a new one
            sock.async_connect(g->servers[node], [this](const std::error_code& e) { on_connected(e); });
            return;
        }
        fail("internal error: no free user for " + who() + " (--churn above --users?)");
    }

    // The server closed the connection after `ok quit`: the cycle is complete.
    void end_cycle() {
        presence_state& ps = g->pres;
        std::error_code ignored;
        sock.close(ignored);
        ++ps.cycles[user];
        ps.busy[user] = 0;
        bump(w.cycles_done, 1);
        start_cycle();
    }

    // A watcher's presence line: `presence <user> online` or `presence <user> offline[ <ms>]`.
    // Per user, events must alternate online/offline starting from the state reported by
    // /watch (offline); an offline event must carry a last-seen time that is Unix ms from this
    // run (not a steady clock, not 0).
    verdict check_presence(std::string_view line, i64 now) {
        const presence_state& ps = g->pres;
        constexpr std::string_view head = "presence ";
        if (!starts_with(line, head) || !starts_with(line.substr(head.size()), ps.user_prefix)) return verdict::other;
        std::size_t i = head.size() + ps.user_prefix.size();
        std::size_t u = 0, digits = 0;
        while (i < line.size() && digits < 12 && line[i] >= '0' && line[i] <= '9') {
            u = u * 10 + static_cast<std::size_t>(line[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || u >= ps.users || i >= line.size() || line[i] != ' ') return verdict::other;
        const std::string_view state = line.substr(i + 1);
        const bool online = state == "online";
        std::optional<i64> last_seen;
        if (!online) {
            if (state.substr(0, 7) != "offline") return verdict::other;
            if (state.size() > 7) {
                i64 ms = 0;
                const auto r = std::from_chars(state.data() + 8, state.data() + state.size(), ms);
                if (state[7] != ' ' || r.ec != std::errc{} || r.ptr != state.data() + state.size()) {
                    fail("check failed: malformed presence line on " + who() + ": '" + printable(line) + "'");
                    return verdict::failed;
                }
                last_seen = ms;
            }
        }
        if (ph == phase::watching) { // the state reported by /watch: nobody has connected yet
            if (online || events[u] != 0) {
                fail("check failed: " + who() + " was told a watched user is online before any connected: '" +
                     printable(line) + "'");
                return verdict::failed;
            }
            events[u] = ~std::uint32_t{0}; // seen; reset to 0 once every user has reported
            if (++initial == ps.users) {
                std::fill(events.begin(), events.end(), 0);
                ph = phase::ready;
                g->ready.fetch_add(1, std::memory_order_relaxed);
            }
            return verdict::ok;
        }
        if (online == (events[u] % 2 == 1)) {
            fail("check failed: " + who() + " got two " + (online ? "online" : "offline") +
                 " events in a row for " + ps.user_prefix + std::to_string(u) + " (event " +
                 std::to_string(events[u] + 1) + "): '" + printable(line) + "'");
            return verdict::failed;
        }
        if (!online) {
            const i64 wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            if (!last_seen || *last_seen < ps.unix_start_ms - 1000 || *last_seen > wall + 1000) {
                fail("check failed: " + who() + " got an offline event without a last-seen time of this run (" +
                     "Unix ms between " + std::to_string(ps.unix_start_ms - 1000) + " and " + std::to_string(wall + 1000) +
                     "): '" + printable(line) + "'");
                return verdict::failed;
            }
        } else {
            const i64 sent = ps.online_sent[u].load(std::memory_order_relaxed);
            if (sent >= g->t_measure.load(std::memory_order_relaxed) && now >= sent) {
                w.hist.record(static_cast<u64>(now - sent));
                ++w.counted;
                w.last_counted_ns = now;
            }
        }
        ++events[u];
        bump(w.delivered_total, 1);
        return verdict::ok;
    }

    // Registered: frees a setup slot. Fan-out connections then wait for the controller to
    // have them all join at once, which lets the server batch the room's join events (K^2/2
    // lines for K members) instead of sending them one by one.
    void on_registered() {
        last_notice.clear(); // the greeting: not a reason for anything later
        g->registered.fetch_add(1, std::memory_order_relaxed);
        --w.opening;
        open_next(w);
        if (rl == role::publisher || rl == role::member) {
            ph = phase::registered;
        } else if (rl == role::watcher) {
            // Every user at once; ready once each has reported its first state.
            ph = phase::watching;
            events.assign(g->pres.users, 0);
            for (std::size_t u = 0; u < g->pres.users; ++u) out += "/watch " + g->pres.user_prefix + std::to_string(u) + "\n";
            flush();
        } else {
            ph = phase::ready;
            g->ready.fetch_add(1, std::memory_order_relaxed);
        }
    }

    void join() {
        ph = phase::joining;
        out += "/join " + g->fan.room + "\n";
        flush();
    }

    static void open_next(worker& wk) {
        while (wk.opening < wk.open_limit && !wk.to_open.empty() && !g->failed) {
            conn* c = wk.to_open.front();
            wk.to_open.pop_front();
            ++wk.opening;
            c->open();
        }
    }

    // Writes `out` now as far as the socket takes it; the rest goes out asynchronously.
    void flush() {
        if (out.empty() || write_pending) return;
        std::error_code ec;
        std::size_t n = sock.write_some(asio::buffer(out.data(), out.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            n = 0;
            ec.clear();
        }
        if (ec) return io_failed(ec, "write");
        if (n == out.size()) {
            out.clear();
            return;
        }
        out.erase_front(n);
        write_pending = true;
        asio::async_write(sock, asio::buffer(out.data(), out.size()), [this](const std::error_code& e, std::size_t) {
            write_pending = false;
            out.clear();
            if (g->failed || e == asio::error::operation_aborted) return;
            if (e) return io_failed(e, "write");
            if (rl == role::sender) pump(*pair);
            else if (rl == role::publisher) pump_fanout();
            else if (acking()) acknowledge();
        });
    }

    void io_failed(const std::error_code& ec, const char* what) {
        if (g->failed) return;
        fail("connection of " + who() + " failed (" + what + "): " + ec.message() +
             (ec == asio::error::connection_reset ? " (reset by the server: was it a slow consumer? see its --max-output)"
                                                  : ""));
    }

    // Reads with async_read_some into a buffer of the connection's own that starts small and
    // doubles whenever a read fills it (up to 256 KiB), so idle connections stay small and busy
    // ones read in large batches. Not async_wait + a shared buffer: Asio's epoll reactor issues
    // an epoll_ctl(EPOLL_CTL_MOD) for every wait it queues, one extra system call per read, while
    // a read operation is tried speculatively and queued without one.
    void read_more() {
        sock.async_read_some(asio::buffer(rbuf.get(), rcap), [this](const std::error_code& ec, std::size_t n) {
            on_read(ec, n);
        });
    }

    void on_read(const std::error_code& ec, std::size_t n) {
        if (g->failed) return;
        if (ec) {
            if (ec == asio::error::operation_aborted) return;
            if (ec == asio::error::eof && rl == role::subject && ph == phase::leaving) return end_cycle();
            if (ec == asio::error::eof && rl == role::recipient && ph == phase::leaving) {
                std::error_code ignored;
                sock.close(ignored);
                ph = phase::ready;
                g->ready.fetch_add(1, std::memory_order_relaxed);
                return recipient_gone();
            }
            if (ec == asio::error::eof) {
                const bool traffic = ph == phase::ready && rl != role::idle;
                return fail("the server closed the connection of " + who() + (ph == phase::ready ? "" : " during setup") +
                            (traffic ? " (cut as a slow consumer? window x line size may exceed the server's output "
                                       "bound, tcp_chat --max-output)"
                                     : "") +
                            (last_notice.empty() ? "" : "; the server's last notice: '" + printable(last_notice) + "'"));
            }
            return io_failed(ec, "read");
        }
        const i64 now = now_ns();
        if (!process(rbuf.get(), n, now)) return;
        after_batch();
        if (g->failed) return;
        if (n == rcap && rcap < max_read_buffer) {
            rcap *= 2;
            rbuf.reset(new char[rcap]);
        }
        read_more();
    }

    bool process(const char* p, std::size_t n, i64 now) {
        const char* const end = p + n;
        u64 before = next;
        if (!partial.empty()) {
            const void* hit = std::memchr(p, '\n', n);
            if (!hit) {
                partial.append(p, n);
                if (partial.size() > (std::size_t{64} << 20)) {
                    fail("the server sent a line of over 64 MiB to " + who());
                    return false;
                }
                return true;
            }
            const char* nl = static_cast<const char*>(hit);
            partial.append(p, static_cast<std::size_t>(nl - p));
            if (!handle_line(partial, now)) return false;
            partial.clear();
            p = nl + 1;
        }
        while (p < end) {
            const void* hit = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
            if (!hit) {
                partial.assign(p, static_cast<std::size_t>(end - p));
                break;
            }
            const char* nl = static_cast<const char*>(hit);
            if (!handle_line(std::string_view(p, static_cast<std::size_t>(nl - p)), now)) return false;
            p = nl + 1;
        }
        if (next != before) bump(w.delivered_total, next - before);
        return true;
    }

    // A receiver in --acked mode.
    bool acking() const { return rl == role::receiver && g->opt.acked; }

    // Cumulative acknowledgement: `/ack <seq>` for everything received, once --ack-every
    // messages wait for it or the receiver has every message sent so far (the window drained:
    // nothing more may come soon, and the server's inbox is left empty). dm seq = payload seq + 1,
    // so `next` is the highest dm seq received. Nothing is appended while a write is in flight
    // (it reads `out`): the write's completion calls this again.
    void acknowledge() {
        if (write_pending || next == acked || ph != phase::ready) return;
        if (next - acked < g->opt.ack_every && next != pair->sent) return;
        acked = next;
        out += "/ack " + std::to_string(acked) + "\n";
        bump(w.acks_total, 1);
        flush();
    }

    void after_batch() {
        if (rl == role::sender && g->opt.mode == run_mode::stored) {
            pump(*pair);
        } else if (rl == role::receiver) {
            if (g->opt.acked) acknowledge();
            pump(*pair);
        } else if (rl == role::member && completed_some) {
            completed_some = false;
            fanout_state& f = g->fan;
            if (&f.publisher->w == &w) {
                pump_fanout();
            } else if (!f.notify_posted.exchange(true)) {
                asio::post(f.publisher->w.io, [] {
                    g->fan.notify_posted.exchange(false);
                    pump_fanout();
                });
            }
        }
    }

    bool handle_line(std::string_view line, i64 now) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (rl == role::sender && ph == phase::ready && g->opt.mode == run_mode::stored) {
            if (line.size() == expect_prefix.size() && std::memcmp(line.data(), expect_prefix.data(), line.size()) == 0)
                return answer(true, now);
            if (line == "err" || starts_with(line, "err ")) {
                const std::string_view code = line.substr(0, line.find(' ', 4)); // "err <code>"
                note_error(code, "the server answered " + who() + ": " + printable(line) + err_hint(line));
                return answer(false, now);
            }
        }
        if (ph == phase::ready && (rl == role::receiver || rl == role::member)) {
            const verdict v = check_delivery(line, now);
            if (v == verdict::ok) return true;
            if (v == verdict::failed) return false;
        }
        if (rl == role::watcher && (ph == phase::ready || ph == phase::watching)) {
            const verdict v = check_presence(line, now);
            if (v == verdict::ok) return true;
            if (v == verdict::failed) return false;
        }
        return handle_other(line);
    }

    // A delivery: `msg <sender> <payload>` (pairs), `dm <seq> <sender> <payload>` (pairs
    // --acked) or `room <room> <publisher> <payload>` (fanout).
    verdict check_delivery(std::string_view line, i64 now) {
        const std::string& pre = expect_prefix;
        if (line.size() < pre.size() || std::memcmp(line.data(), pre.data(), pre.size()) != 0) return verdict::other;
        std::size_t head = pre.size();
        if (acking()) {
            // "dm " then the receiver's sequence number: 1, 2, 3, ... (the payload's seq + 1).
            u64 dm_seq = 0;
            std::size_t digits = 0;
            while (head < line.size() && digits < 20 && line[head] >= '0' && line[head] <= '9') {
                dm_seq = dm_seq * 10 + static_cast<u64>(line[head] - '0');
                ++head;
                ++digits;
            }
            if (digits == 0 || head >= line.size() || line[head] != ' ') {
                fail("check failed: malformed dm line delivered to " + who() + ": '" + printable(line) + "'");
                return verdict::failed;
            }
            ++head;
            if (line.size() - head < dm_from.size() || line.compare(head, dm_from.size(), dm_from) != 0)
                return verdict::other;
            head += dm_from.size();
            if (dm_seq != next + 1) {
                fail("check failed: dm seq to " + who() + " is not consecutive: expected " + std::to_string(next + 1) +
                     ", got " + std::to_string(dm_seq) +
                     (dm_seq == 0 ? std::string(" (seqs start at 1)")
                      : dm_seq <= acked ? " (already acknowledged: redelivered)"
                                        : std::string()));
                return verdict::failed;
            }
        }
        const char* body = line.data() + head;
        const std::size_t size = line.size() - head;
        const std::size_t want = g->opt.payload;
        u64 seq = next;
        u64 ts = last_ts;
        // The fast path compares the expected sequence number's digits and reuses the timestamp
        // of the previous line when its digits are the same (a batch is sent with one); anything
        // else takes the full parse below, which names what is wrong.
        const char* const ts_at = body + seq_digits + 1;
        const bool fast = size == want && std::memcmp(body, next_digits, seq_digits) == 0 &&
                          body[seq_digits] == ' ' && std::memcmp(ts_at, last_ts_digits, ts_digits) == 0;
        if (!fast && size == want && get_digits(body, seq_digits, seq) && body[seq_digits] == ' ' &&
            get_digits(ts_at, ts_digits, ts)) {
            std::memcpy(last_ts_digits, ts_at, ts_digits);
            last_ts = ts;
        } else if (!fast) {
            seq = ~u64{0};
        }
        if (seq == ~u64{0} || std::memcmp(body + header_bytes, g->pad.data(), want - header_bytes) != 0) {
            fail("check failed: corrupted payload delivered to " + who() + " (expected " + std::to_string(want) +
                 " bytes as sent, seq " + std::to_string(next) + "): '" + printable(line) + "'");
            return verdict::failed;
        }
        if (seq != next) {
            std::string what = seq < next ? "duplicate or reordered" : "lost or reordered";
            fail("check failed: " + what + " delivery to " + who() + ": expected seq " + std::to_string(next) +
                 ", got " + std::to_string(seq) +
                 (seq > next ? " (" + std::to_string(seq - next) + " message(s) missing)" : std::string()));
            return verdict::failed;
        }
        const u64 sent = rl == role::receiver ? pair->sent : g->fan.sent.load(std::memory_order_relaxed);
        if (seq >= sent) {
            fail("check failed: " + who() + " got seq " + std::to_string(seq) + ", which was never sent (" +
                 std::to_string(sent) + " sent)");
            return verdict::failed;
        }
        if (static_cast<i64>(ts) > now) {
            fail("check failed: " + who() + " got a send timestamp from the future (corrupted payload): '" +
                 printable(line) + "'");
            return verdict::failed;
        }
        ++next;
        increment_digits(next_digits, seq_digits);
        if (static_cast<i64>(ts) >= g->t_measure.load(std::memory_order_relaxed)) {
            w.hist.record(static_cast<u64>(now - static_cast<i64>(ts)));
            ++w.counted;
            w.last_counted_ns = now;
        }
        if (rl == role::member) {
            fanout_state& f = g->fan;
            std::atomic<std::uint32_t>& slot = f.got[seq & f.ring_mask];
            std::uint32_t n;
            if (g->multi) {
                n = slot.fetch_add(1, std::memory_order_acq_rel) + 1;
            } else {
                n = slot.load(std::memory_order_relaxed) + 1;
                slot.store(n, std::memory_order_relaxed);
            }
            if (n == f.members) {
                // Members get messages in order, so when the last one gets seq every earlier
                // message is complete too: completions come in order.
                slot.store(0, std::memory_order_relaxed);
                f.completed.store(seq + 1);
                completed_some = true;
            }
        }
        return verdict::ok;
    }

    static bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

    // Stored mode: the answer to the oldest unanswered /msg of this sender (`ok queued
    // <recipient>`, or an `err` line: not stored). A server answers a connection's /msg in the
    // order sent (a durable store commits in order), so the answer's latency is measured from
    // that message's send time.
    bool answer(bool stored, i64 now) {
        pair_state& p = *pair;
        if (p.answered == p.sent) {
            fail("check failed: " + who() + " got an answer with no message in flight (" + std::to_string(p.sent) +
                 " sent, all answered)");
            return false;
        }
        const i64 ts = p.sent_at[p.answered % p.sent_at.size()];
        ++p.answered;
        bump(w.delivered_total, 1);
        if (stored && ts >= g->t_measure.load(std::memory_order_relaxed)) {
            w.hist.record(static_cast<u64>(now - ts));
            ++w.counted;
            w.last_counted_ns = now;
        }
        return true;
    }

    bool unexpected(std::string_view line) {
        fail("unexpected line from the server on " + who() + ": '" + printable(line) + "'");
        return false;
    }

    bool handle_other(std::string_view line) {
        if (starts_with(line, "* ") || line == "*") { // informational (greeting, "* server full", ...)
            last_notice.assign(line.substr(0, 200));
            return true;
        }
        if (line.empty()) return true;
        if (line == "err" || starts_with(line, "err ")) {
            std::string hint = err_hint(line);
            if (starts_with(line, "err too-many-watches"))
                hint = " (each watcher watches every user: the server needs --max-watches of at least --users)";
            else if (starts_with(line, "err name-taken") && rl == role::subject)
                hint = " (a user's previous session was still open when it connected again: another run with the "
                       "same --prefix, or --sessions exclusive with a late close)";
            else if ((line == "err unknown-command" || starts_with(line, "err unknown-command ")) &&
                     (rl == role::watcher || acking()))
                hint = " (the server does not speak the line protocol v1.2)";
            fail("the server replied to " + who() + ": " + printable(line) + hint);
            return false;
        }
        switch (ph) {
        case phase::registering:
            if (acking() && !ack_on && line == "ok ack on") {
                ack_on = true;
                return true;
            }
            if (rl == role::subject && line.size() == 12 + name.size() && starts_with(line, "ok register ") &&
                line.substr(12) == name) {
                ph = phase::online;
                return true;
            }
            if (rl == role::recipient && line.size() == 12 + name.size() && starts_with(line, "ok register ") &&
                line.substr(12) == name) {
                // Registered once: a known user. `/quit` follows; the server answers and closes.
                last_notice.clear();
                g->registered.fetch_add(1, std::memory_order_relaxed);
                --w.opening;
                open_next(w);
                ph = phase::online;
                return true;
            }
            if (line.size() == 12 + name.size() && starts_with(line, "ok register ") && line.substr(12) == name &&
                ack_on == acking()) {
                on_registered();
                return true;
            }
            return unexpected(line);
        case phase::joining:
            if (line.size() == 8 + g->fan.room.size() && starts_with(line, "ok join ") && line.substr(8) == g->fan.room) {
                ph = phase::ready;
                g->ready.fetch_add(1, std::memory_order_relaxed);
                return true;
            }
            return unexpected(line);
        case phase::ready:
        case phase::who_ok:
            if (rl == role::publisher || rl == role::member) {
                // Presence events of the room while members join: expected, not checked.
                const std::string_view room = g->fan.room;
                if ((starts_with(line, "join ") && starts_with(line.substr(5), room) && line.size() > 5 + room.size() &&
                     line[5 + room.size()] == ' ') ||
                    (starts_with(line, "leave ") && starts_with(line.substr(6), room) &&
                     line.size() > 6 + room.size() && line[6 + room.size()] == ' '))
                    return true;
            }
            // --acked: a message that finds its receiver's ack window full (the server hands each
            // session at most so many unacknowledged messages) is stored and answered
            // `ok queued <receiver>`; the receiver gets it as it acknowledges.
            if (rl == role::sender && g->opt.acked && starts_with(line, "ok queued ") &&
                line.substr(10) == pair->receiver->name) {
                ++queued_replies;
                return true;
            }
            if (rl == role::receiver && starts_with(line, acking() ? "dm " : "msg ")) {
                fail("check failed: " + who() + " got a message from the wrong sender (expected " +
                     pair->sender->name + "): '" + printable(line) + "'");
                return false;
            }
            if (acking() && starts_with(line, "msg ")) {
                fail("check failed: " + who() + " has acks on but got a msg line, not dm <seq>: '" + printable(line) +
                     "'");
                return false;
            }
            if (rl == role::member && starts_with(line, "room ")) {
                fail("check failed: " + who() + " got a room message from the wrong room or sender (expected " +
                     std::string(expect_prefix, 0, expect_prefix.size() - 1) + " ...): '" + printable(line) + "'");
                return false;
            }
            return unexpected(line);
        case phase::who_wait:
            if (line == "who" || starts_with(line, "who ")) {
                // The reply lists every registered user; this connection must be among them.
                std::string_view rest = line.substr(3);
                bool found = false;
                while (!rest.empty()) {
                    rest.remove_prefix(1);
                    const std::size_t sp = rest.find(' ');
                    if (rest.substr(0, sp) == name) {
                        found = true;
                        break;
                    }
                    if (sp == std::string_view::npos) break;
                    rest.remove_prefix(sp);
                }
                if (!found) {
                    fail("check failed: /who on " + who() + " does not list it (" + std::to_string(line.size()) +
                         " bytes)");
                    return false;
                }
                ph = phase::who_ok;
                g->who_done.fetch_add(1);
                return true;
            }
            return unexpected(line);
        case phase::watching:
            if (starts_with(line, "ok watch ") && starts_with(line.substr(9), g->pres.user_prefix)) return true;
            return unexpected(line);
        case phase::online:
            if (line == "ok quit") {
                ph = phase::leaving;
                return true;
            }
            return unexpected(line);
        case phase::unopened:
        case phase::connecting:
        case phase::registered:
        case phase::leaving:
            break;
        }
        return unexpected(line);
    }
};

// ---- senders ----------------------------------------------------------------------------------

// Appends k lines made from `tmpl` with sequence numbers seq.. and send timestamp ts.
void format_batch(out_buffer& out, const std::string& tmpl, std::size_t seq_off, u64 seq, u64 k, i64 ts) {
    const std::size_t len = tmpl.size();
    char* p = out.extend(static_cast<std::size_t>(k) * len);
    char tsd[ts_digits];
    put_digits(tsd, static_cast<u64>(ts), ts_digits);
    char seqd[seq_digits];
    put_digits(seqd, seq, seq_digits);
    for (u64 i = 0; i < k; ++i, p += len) {
        std::memcpy(p, tmpl.data(), len);
        std::memcpy(p + seq_off, seqd, seq_digits);
        std::memcpy(p + seq_off + seq_digits + 1, tsd, ts_digits);
        increment_digits(seqd, seq_digits);
    }
}

// Messages of the pair no longer in flight: delivered to the receiver, or (stored) answered.
u64 pair_finished(const pair_state& p) { return g->opt.mode == run_mode::stored ? p.answered : p.receiver->next; }

void pair_maybe_done(pair_state& p) {
    if (p.stopping && !p.done && pair_finished(p) == p.sent) {
        p.done = true;
        g->units_done.fetch_add(1);
    }
}

// Tops the pair's window up: one batch, one write.
void pump(pair_state& p) {
    if (g->failed) return;
    if (p.stopping) return pair_maybe_done(p);
    conn& s = *p.sender;
    if (s.write_pending || !s.w.started) return;
    const u64 in_flight = p.sent - pair_finished(p);
    if (in_flight >= g->opt.window) return;
    const i64 now = now_ns();
    u64 k = g->opt.window - in_flight;
    if (now >= g->t_end.load(std::memory_order_relaxed)) {
        p.stopping = true;
        return pair_maybe_done(p);
    }
    if (now >= g->t_measure.load(std::memory_order_relaxed)) {
        if (p.budget == 0) {
            p.stopping = true;
            return pair_maybe_done(p);
        }
        k = std::min(k, p.budget);
        p.budget -= k;
    }
    format_batch(s.out, p.tmpl, p.seq_off, p.sent, k, now);
    if (!p.sent_at.empty()) // stored: in flight are at most a window, so no slot in use is overwritten
        for (u64 i = 0; i < k; ++i) p.sent_at[(p.sent + i) % p.sent_at.size()] = now;
    p.sent += k;
    bump(s.w.sent_total, k);
    s.flush();
}

void fanout_maybe_done() {
    fanout_state& f = g->fan;
    if (f.stopping && !f.done && f.completed.load() == f.sent.load()) {
        f.done = true;
        g->units_done.fetch_add(1);
    }
}

void pump_fanout() {
    fanout_state& f = g->fan;
    if (g->failed) return;
    if (f.stopping) return fanout_maybe_done();
    conn& pub = *f.publisher;
    if (pub.write_pending || !pub.w.started) return;
    const u64 sent = f.sent.load(std::memory_order_relaxed);
    const u64 in_flight = sent - f.completed.load();
    if (in_flight >= g->opt.window) return;
    const i64 now = now_ns();
    u64 k = g->opt.window - in_flight;
    if (now >= g->t_end.load(std::memory_order_relaxed)) {
        f.stopping = true;
        return fanout_maybe_done();
    }
    if (now >= g->t_measure.load(std::memory_order_relaxed)) {
        if (f.budget == 0) {
            f.stopping = true;
            return fanout_maybe_done();
        }
        k = std::min(k, f.budget);
        f.budget -= k;
    }
    format_batch(pub.out, f.tmpl, f.seq_off, sent, k, now);
    f.sent.store(sent + k); // before the write: a member never sees a seq not yet counted as sent
    bump(pub.w.sent_total, k);
    pub.flush();
}

// Stored mode: a recipient has registered and the server has closed its connection (it is known
// and offline). Once all are, the senders connect.
void recipient_gone() {
    if (g->recipients_gone.fetch_add(1) + 1 != g->recipients_total) return;
    for (auto& wp : g->workers) {
        worker* w = wp.get();
        asio::post(w->io, [w] {
            for (conn* c : w->deferred) w->to_open.push_back(c);
            w->deferred.clear();
            conn::open_next(*w);
        });
    }
}

// ---- server memory ----------------------------------------------------------------------------

// VmRSS of a process in KiB, or -1 (with `why`) when it cannot be read.
i64 read_rss_kib(long pid, std::string* why = nullptr) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::ifstream in(path);
    if (!in) {
        if (why) *why = "cannot read " + path + ": " + std::strerror(errno);
        return -1;
    }
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, 6, "VmRSS:") == 0) {
            std::size_t i = 6;
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            i64 v = 0;
            const auto r = std::from_chars(line.data() + i, line.data() + line.size(), v);
            if (r.ec == std::errc{}) return v;
        }
    }
    if (why) *why = "no VmRSS line in " + path;
    return -1;
}

// CPU time (user + system) of a process in clock ticks (sysconf(_SC_CLK_TCK) per second), or -1.
i64 read_cpu_ticks(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!in || !std::getline(in, stat)) return -1;
    const std::size_t paren = stat.rfind(')'); // the command name may hold spaces and parentheses
    if (paren == std::string::npos) return -1;
    std::istringstream fields(stat.substr(paren + 1));
    std::string field;
    i64 utime = -1, stime = -1;
    for (int i = 3; fields >> field; ++i) { // field 3 is the state; utime is 14, stime 15 (proc(5))
        if (i == 14) utime = std::atoll(field.c_str());
        if (i == 15) {
            stime = std::atoll(field.c_str());
            break;
        }
    }
    return utime < 0 || stime < 0 ? -1 : utime + stime;
}

// ---- controller -------------------------------------------------------------------------------


u64 sum_delivered() {
    u64 d = 0;
    for (auto& w : g->workers) d += w->delivered_total.load(std::memory_order_relaxed);
    return d;
}

u64 sum_acks() {
    u64 d = 0;
    for (auto& w : g->workers) d += w->acks_total.load(std::memory_order_relaxed);
    return d;
}

u64 sum_cycles() {
    u64 d = 0;
    for (auto& w : g->workers) d += w->cycles_done.load(std::memory_order_relaxed);
    return d;
}

// Presence events the watchers must get for the cycles completed so far: online and offline for
// each, to every watcher.
u64 presence_expected() { return sum_cycles() * 2 * g->opt.watchers; }

// Presence: samples the measured window's ends (first tick at or after t_measure, then t_end).
// CPU time of the processes whose CPU the presence report counts (--cpu-pids, else
// --server-pid), summed; -1 when one cannot be read.
i64 read_server_cpu_ticks() {
    if (g->opt.cpu_pids.empty()) return read_cpu_ticks(g->opt.server_pid);
    i64 sum = 0;
    for (const long p : g->opt.cpu_pids) {
        const i64 t = read_cpu_ticks(p);
        if (t < 0) return -1;
        sum += t;
    }
    return sum;
}
void sample_presence(i64 now) {
    presence_state& ps = g->pres;
    const bool pid = g->opt.server_pid != 0 || !g->opt.cpu_pids.empty();
    if (ps.at_measure_ns == 0 && now >= g->t_measure.load()) {
        ps.at_measure_ns = now;
        ps.cycles_at_measure = sum_cycles();
        ps.events_at_measure = sum_delivered();
        if (pid) ps.cpu_at_measure = read_server_cpu_ticks();
    }
    if (ps.at_measure_ns != 0 && ps.at_end_ns == 0 && now >= g->t_end.load()) {
        ps.at_end_ns = now;
        ps.cycles_at_end = sum_cycles();
        ps.events_at_end = sum_delivered();
        if (pid) ps.cpu_at_end = read_server_cpu_ticks();
    }
}

u64 sum_sent() {
    u64 d = 0;
    for (auto& w : g->workers) d += w->sent_total.load(std::memory_order_relaxed);
    return d;
}

void finish() {
    g->finished.store(true);
    stop_all();
}

void start_traffic(i64 now) {
    const i64 measure = now + static_cast<i64>(g->opt.warmup_s * ns_per_s);
    g->t_start.store(now);
    g->t_measure.store(measure);
    g->t_end.store(g->opt.messages ? never : measure + static_cast<i64>(g->opt.duration_s * ns_per_s));
    g->st = stage::run;
    g->stall_mark = ~u64{0};
    g->stall_since = now;
    g->last_print_ns = now;
    g->last_print_delivered = 0;
    for (auto& wp : g->workers) {
        worker* w = wp.get();
        // The post publishes the time plan to the worker's thread.
        asio::post(w->io, [w] {
            w->started = true;
            if (g->opt.mode == run_mode::pairs || g->opt.mode == run_mode::stored)
                for (pair_state* p : w->local_pairs) pump(*p);
            else if (g->opt.mode == run_mode::fanout && w->id == 0)
                pump_fanout();
            else if (g->opt.mode == run_mode::presence)
                for (conn* c : w->subjects) c->start_cycle();
        });
    }
}

void start_who_sample() {
    g->st = stage::who;
    for (conn* c : g->who_sample) {
        asio::post(c->w.io, [c] {
            c->ph = phase::who_wait;
            c->out += "/who\n";
            c->flush();
        });
    }
}

bool stalled(u64 mark, i64 now) {
    if (mark != g->stall_mark) {
        g->stall_mark = mark;
        g->stall_since = now;
        return false;
    }
    return now - g->stall_since > static_cast<i64>(g->opt.timeout_s * ns_per_s);
}

void print_progress(i64 now) {
    if (!g->progress || now < g->next_print) return;
    g->next_print = now + ns_per_s;
    const std::string m(mode_name(g->opt.mode));
    switch (g->st) {
    case stage::setup:
    case stage::join:
        std::fprintf(stderr, "loadgen %s: setup %.1f s: %s of %s connected, %s registered%s%s\n", m.c_str(),
                     double(now - g->t_setup_start) / 1e9, with_commas(g->connected.load()).c_str(),
                     with_commas(g->conns_total).c_str(), with_commas(g->registered.load()).c_str(),
                     g->st == stage::join ? ", joined " : "",
                     g->st == stage::join ? with_commas(g->ready.load()).c_str() : "");
        break;
    case stage::run:
    case stage::settle: {
        const u64 d = sum_delivered();
        const u64 sent = sum_sent();
        const u64 members = g->opt.mode == run_mode::fanout ? g->fan.members : 1;
        const double dt = double(now - g->last_print_ns) / 1e9;
        const double rate = dt > 0 ? double(d - g->last_print_delivered) / dt : 0;
        const u64 expected = sent * members;
        std::fprintf(stderr, "loadgen %s: %s %.1f s: %s %s, %s/s, %s in flight\n", m.c_str(),
                     now < g->t_measure.load() ? "warmup" : "run", double(now - g->t_start.load()) / 1e9, with_commas(d).c_str(),
                     g->opt.mode == run_mode::stored ? "answers" : "deliveries",
                     rate_text(rate).c_str(), with_commas(expected > d ? expected - d : 0).c_str());
        g->last_print_ns = now;
        g->last_print_delivered = d;
        break;
    }
    case stage::hold:
        std::fprintf(stderr, "loadgen idle: %s connections registered, holding\n", with_commas(g->ready.load()).c_str());
        break;
    case stage::who:
        std::fprintf(stderr, "loadgen idle: /who answered on %s of %s sampled connections\n",
                     with_commas(g->who_done.load()).c_str(), with_commas(g->who_sample.size()).c_str());
        break;
    }
}

void tick() {
    if (g->failed || g->finished) return;
    const i64 now = now_ns();
    switch (g->st) {
    case stage::setup:
    case stage::join: {
        const std::size_t registered = g->registered.load();
        const std::size_t ready = g->ready.load();
        if (g->st == stage::setup && registered == g->conns_total && g->opt.mode == run_mode::fanout) {
            g->st = stage::join;
            for (auto& wp : g->workers) {
                worker* w = wp.get();
                asio::post(w->io, [w] {
                    for (auto& c : w->conns) c->join();
                });
            }
            break;
        }
        if (ready == g->conns_total) {
            g->ready_at = now;
            if (g->opt.mode == run_mode::idle) {
                g->st = stage::hold;
                g->hold_until = now + static_cast<i64>(g->opt.duration_s * ns_per_s);
            } else {
                start_traffic(now);
            }
            break;
        }
        if (stalled(g->connected.load() + registered + ready, now)) {
            std::string hint;
            if (g->st == stage::join)
                hint = "; /join gets no reply: is the server stuck?";
            else if (g->connected.load() == registered)
                hint = "; connecting hangs: is the server out of file descriptors (its ulimit -n), or its "
                       "listen backlog full?";
            else
                hint = "; /register gets no reply: is the server stuck?";
            fail("setup made no progress for " + fixed(g->opt.timeout_s, 0) + " s: " +
                 with_commas(g->connected.load()) + " of " + with_commas(g->conns_total) + " connected, " +
                 with_commas(registered) + " registered" +
                 (g->st == stage::join ? ", " + with_commas(ready) + " joined the room" : std::string()) + hint);
            return;
        }
        break;
    }
    case stage::run: {
        const bool presence = g->opt.mode == run_mode::presence;
        if (presence) sample_presence(now);
        if (g->units_done.load() == g->units_total && (!presence || sum_delivered() >= presence_expected())) {
            // Everything sent was delivered; listen a little longer for duplicates or strays.
            g->st = stage::settle;
            g->settle_until = now + ns_per_s / 10;
            break;
        }
        const u64 d = sum_delivered();
        if (presence && stalled(d + sum_cycles(), now)) {
            const u64 expected = presence_expected();
            g->stalled_run = true;
            fail("no progress for " + fixed(g->opt.timeout_s, 0) + " s: " + with_commas(expected - std::min(expected, d)) +
                 " presence events outstanding, " + with_commas(g->units_total - g->units_done.load()) + " of " +
                 with_commas(g->units_total) + " user connections still in a cycle (is the server stuck? with "
                 "--presence-grace above 0 it announces no transition of a user back within the grace)");
            return;
        }
        if (!presence && stalled(d, now)) {
            const u64 members = g->opt.mode == run_mode::fanout ? g->fan.members : 1;
            const u64 expected = sum_sent() * members;
            g->stalled_run = true;
            if (g->opt.mode == run_mode::stored)
                fail("no answer for " + fixed(g->opt.timeout_s, 0) + " s: " + with_commas(expected - std::min(expected, d)) +
                     " /msg answers outstanding (the server is stuck, or a recipient was online: a live delivery is "
                     "not answered)");
            else
                fail("no delivery for " + fixed(g->opt.timeout_s, 0) + " s: " + with_commas(expected - std::min(expected, d)) +
                     " deliveries outstanding (lost by the server, or it is stuck)");
            return;
        }
        break;
    }
    case stage::settle:
        if (now >= g->settle_until) return finish();
        break;
    case stage::hold:
        if (now >= g->hold_until) {
            if (g->opt.server_pid) {
                std::string why;
                g->rss_after_kib = read_rss_kib(g->opt.server_pid, &why);
                if (g->rss_after_kib < 0) return fail(why + " (did the server exit?)");
            }
            start_who_sample();
            g->stall_mark = ~u64{0};
        }
        break;
    case stage::who:
        if (g->who_done.load() == g->who_sample.size()) return finish();
        if (stalled(g->who_done.load(), now)) {
            return fail("/who got no reply for " + fixed(g->opt.timeout_s, 0) + " s (" +
                        with_commas(g->who_done.load()) + " of " + with_commas(g->who_sample.size()) + " answered)");
        }
        break;
    }
    print_progress(now);
    g->timer->expires_after(std::chrono::milliseconds(10));
    g->timer->async_wait([](const std::error_code& ec) {
        if (!ec) tick();
    });
}

// ---- arguments --------------------------------------------------------------------------------

bool valid_name_chars(std::string_view s) {
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

// 0: run; 1: --help; 2: usage error (printed).
int parse_args(int argc, char** argv, options& o) {
    bool messages_given = false;
    bool ack_every_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") return 1;
        if (arg == "--json") {
            o.json = true;
            continue;
        }
        if (arg == "--acked") {
            o.acked = true;
            continue;
        }
        if (arg.substr(0, 2) != "--") {
            if (o.mode_given) {
                std::cerr << "loadgen: unexpected argument " << arg << " (see --help)\n";
                return 2;
            }
            if (arg == "pairs") o.mode = run_mode::pairs;
            else if (arg == "fanout") o.mode = run_mode::fanout;
            else if (arg == "idle") o.mode = run_mode::idle;
            else if (arg == "presence") o.mode = run_mode::presence;
            else if (arg == "stored") o.mode = run_mode::stored;
            else {
                std::cerr << "loadgen: unknown mode " << arg << " (pairs, fanout, idle, presence or stored; see --help)\n";
                return 2;
            }
            o.mode_given = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << "loadgen: " << arg << " needs a value (see --help)\n";
            return 2;
        }
        const std::string_view v = argv[++i];
        bool ok = true;
        const std::size_t big = std::size_t{1} << 24;
        if (arg == "--host") o.host = std::string(v);
        else if (arg == "--port") ok = parse_number<unsigned short>(v, o.port, 1, 65535);
        else if (arg == "--ports") ok = parse_ports(v, o.ports);
        else if (arg == "--duration") {
            ok = parse_seconds(v, o.duration_s, 0.001);
            o.duration_given = true;
        } else if (arg == "--messages") {
            ok = parse_number<u64>(v, o.messages, 1, u64{1} << 40);
            messages_given = true;
        }
        else if (arg == "--warmup") ok = parse_seconds(v, o.warmup_s, 0);
        else if (arg == "--payload") ok = parse_number<std::size_t>(v, o.payload, header_bytes, std::size_t{1} << 20);
        else if (arg == "--window") ok = parse_number<std::size_t>(v, o.window, 1, std::size_t{1} << 20);
        else if (arg == "--threads") ok = parse_number<unsigned>(v, o.threads, 1, 64);
        else if (arg == "--prefix") o.prefix = std::string(v);
        else if (arg == "--timeout") ok = parse_seconds(v, o.timeout_s, 0.1);
        else if (arg == "--server-pid") ok = parse_number<long>(v, o.server_pid, 1, 1L << 30);
        else if (arg == "--cpu-pids") ok = parse_number_list<long>(v, o.cpu_pids, 1, 1L << 30);
        else if (arg == "--pairs") ok = parse_number<std::size_t>(v, o.pairs, 1, big);
        else if (arg == "--senders") ok = parse_number<std::size_t>(v, o.senders, 1, big);
        else if (arg == "--ack-every") {
            ok = parse_number<std::size_t>(v, o.ack_every, 1, big);
            ack_every_given = true;
        }
        else if (arg == "--members") ok = parse_number<std::size_t>(v, o.members, 1, big);
        else if (arg == "--conns") ok = parse_number<std::size_t>(v, o.conns, 1, big);
        else if (arg == "--sample") ok = parse_number<std::size_t>(v, o.sample, 0, big);
        else if (arg == "--per-source") ok = parse_number<std::size_t>(v, o.per_source, 1, big);
        else if (arg == "--connect-concurrency") ok = parse_number<std::size_t>(v, o.connect_concurrency, 1, big);
        else if (arg == "--users") ok = parse_number<std::size_t>(v, o.users, 1, big);
        else if (arg == "--watchers") ok = parse_number<std::size_t>(v, o.watchers, 0, std::size_t{1} << 16);
        else if (arg == "--churn") ok = parse_number<std::size_t>(v, o.churn, 1, std::size_t{1} << 16);
        else {
            std::cerr << "loadgen: unknown option " << arg << " (see --help)\n";
            return 2;
        }
        if (!ok) {
            std::cerr << "loadgen: bad value for " << arg << ": " << v
                      << (arg == "--payload" ? " (27 to 1048576 bytes: the payload holds a 10-digit sequence number "
                                               "and a 16-digit timestamp)"
                                             : " (see --help)")
                      << "\n";
            return 2;
        }
    }
    if (!o.mode_given) {
        std::cerr << "loadgen: give a mode: pairs, fanout, idle, presence or stored (see --help)\n";
        return 2;
    }
    if (messages_given && o.duration_given) {
        std::cerr << "loadgen: --duration and --messages exclude each other\n";
        return 2;
    }
    if (o.acked && o.mode != run_mode::pairs) {
        std::cerr << "loadgen: --acked is a pairs option\n";
        return 2;
    }
    if (ack_every_given && !o.acked) {
        std::cerr << "loadgen: --ack-every needs --acked\n";
        return 2;
    }
    if (o.mode == run_mode::idle && !o.duration_given) o.duration_s = 1;
    if (o.mode == run_mode::presence && messages_given) {
        std::cerr << "loadgen: presence runs for --duration; --messages is for pairs and fanout\n";
        return 2;
    }
    if (o.mode == run_mode::presence && o.churn > o.users) {
        std::cerr << "loadgen: --churn (" << o.churn << ") must not exceed --users (" << o.users
                  << "): a user is in one cycle at a time\n";
        return 2;
    }
    if (o.mode == run_mode::pairs && o.messages && o.messages < o.pairs) {
        std::cerr << "loadgen: --messages must be at least --pairs (" << o.pairs << ")\n";
        return 2;
    }
    if (o.mode == run_mode::stored && o.messages && o.messages < o.senders) {
        std::cerr << "loadgen: --messages must be at least --senders (" << o.senders << ")\n";
        return 2;
    }
    if (!valid_name_chars(o.prefix)) {
        std::cerr << "loadgen: --prefix must be made of a-z 0-9 _ . - (names are folded to lower case by the "
                     "server, so use lower case)\n";
        return 2;
    }
    return 0;
}

std::string run_id() {
    // Short and unique enough among concurrent runs on one server: pid and time, base 36.
    u64 v = static_cast<u64>(::getpid()) * 2654435761u ^
            static_cast<u64>(std::chrono::system_clock::now().time_since_epoch().count() / 1000);
    std::string s;
    for (int i = 0; i < 5; ++i) {
        s += "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    }
    return s;
}

// ---- report -----------------------------------------------------------------------------------


// Raises the soft file-descriptor limit to the hard limit; false (with a message) if that is
// not enough for `needed` descriptors.
bool raise_fd_limit(std::size_t needed, std::string& message, rlim_t& limit) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        message = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
        return false;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl = want;
        } else if (needed > rl.rlim_cur) {
            want.rlim_cur = static_cast<rlim_t>(needed);
            if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
        }
    }
    limit = rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
        message = "this run needs " + std::to_string(needed) + " file descriptors (" +
                  std::to_string(g->conns_total) + " connections + spare), but the limit is " +
                  std::to_string(rl.rlim_cur) + " (hard limit " + std::to_string(rl.rlim_max) +
                  ", `ulimit -Hn`): raise the hard limit (as root: `ulimit -Hn N` or LimitNOFILE=, or "
                  "/etc/security/limits.conf) or use fewer connections. The server needs as many.";
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    run_state state;
    g = &state;
    options& o = state.opt;
    if (const int r = parse_args(argc, argv, o); r != 0) {
        if (r == 1) std::cout << usage_text;
        return r == 1 ? 0 : 2;
    }
    std::signal(SIGPIPE, SIG_IGN);

    if (o.prefix.empty()) o.prefix = "lg" + run_id();
    std::size_t count = 0;
    switch (o.mode) {
    case run_mode::pairs: count = o.pairs; state.conns_total = 2 * o.pairs; break;
    case run_mode::fanout: count = o.members; state.conns_total = o.members + 1; break;
    case run_mode::idle: count = o.conns; state.conns_total = o.conns; break;
    case run_mode::presence: count = std::max(o.users, o.watchers); state.conns_total = o.watchers; break;
    case run_mode::stored: count = o.senders; state.conns_total = 2 * o.senders; break;
    }
    {
        const std::size_t longest = o.prefix.size() + 1 + std::to_string(count - 1).size();
        const std::size_t room = o.prefix.size() + 4;
        if (longest > max_name_bytes || room > max_name_bytes) {
            std::cerr << "loadgen: --prefix too long: names would exceed " << max_name_bytes << " bytes (" << o.prefix << "..."
                      << ")\n";
            return 2;
        }
    }

    // Resolve the server.
    {
        asio::io_context tmp;
        asio::ip::tcp::resolver resolver(tmp);
        std::error_code ec;
        const auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
        if (ec || results.empty()) {
            std::cerr << "loadgen: cannot resolve --host " << o.host << ": " << (ec ? ec.message() : "no address")
                      << "\n";
            return 1;
        }
        state.server = results.begin()->endpoint();
        for (const auto& r : results)
            if (r.endpoint().address().is_v4()) {
                state.server = r.endpoint();
                break;
            }
        state.loopback_v4 = state.server.address().is_v4() && state.server.address().is_loopback();
        state.servers.assign(1, state.server);
        if (!o.ports.empty()) {
            state.servers.clear();
            for (const unsigned short p : o.ports) state.servers.emplace_back(state.server.address(), p);
        }
    }
    const std::size_t nodes = state.servers.size();

    rlim_t fd_limit = 0;
    {
        std::string message;
        const std::size_t cycling = o.mode == run_mode::presence ? o.churn : 0;
        if (!raise_fd_limit(state.conns_total + cycling + 64, message, fd_limit)) {
            std::cerr << "loadgen: " << message << "\n";
            return 1;
        }
    }
    if (o.server_pid) {
        std::string why;
        state.rss_before_kib = read_rss_kib(o.server_pid, &why);
        if (state.rss_before_kib < 0) {
            std::cerr << "loadgen: --server-pid: " << why << "\n";
            return 1;
        }
    }

    state.multi = o.threads > 1;
    state.pad = make_padding(o.payload - header_bytes);
    const std::string payload_tmpl = std::string(seq_digits, '0') + " " + std::string(ts_digits, '0') + state.pad;
    for (unsigned i = 0; i < o.threads; ++i) {
        state.workers.push_back(std::make_unique<worker>(i));
        state.workers.back()->open_limit = std::max<std::size_t>(1, o.connect_concurrency / o.threads);
    }
    auto worker_for = [&](std::size_t i) -> worker& { return *state.workers[i % o.threads]; };
    auto add_conn = [&](worker& w, role r, std::size_t index, std::string name) {
        w.conns.push_back(std::make_unique<conn>(w, r, index, std::move(name)));
        w.conns.back()->node = index % nodes;
        w.to_open.push_back(w.conns.back().get());
        return w.conns.back().get();
    };

    // Connections in opening order: index drives the source address in idle mode.
    std::size_t next_index = 0;
    switch (o.mode) {
    case run_mode::pairs: {
        state.pairs.resize(o.pairs);
        state.units_total = o.pairs;
        for (std::size_t i = 0; i < o.pairs; ++i) {
            pair_state& p = state.pairs[i];
            worker& w = worker_for(i);
            p.index = i;
            p.sender = add_conn(w, role::sender, next_index++, o.prefix + "s" + std::to_string(i));
            p.receiver = add_conn(w, role::receiver, next_index++, o.prefix + "r" + std::to_string(i));
            p.sender->node = i % nodes;
            p.receiver->node = (i + 1) % nodes;
            p.sender->pair = p.receiver->pair = &p;
            p.tmpl = "/msg " + p.receiver->name + " ";
            p.seq_off = p.tmpl.size();
            p.tmpl += payload_tmpl + "\n";
            p.receiver->expect_prefix = o.acked ? "dm " : "msg " + p.sender->name + " ";
            p.receiver->dm_from = p.sender->name + " ";
            if (o.messages) p.budget = o.messages / o.pairs + (i < o.messages % o.pairs ? 1 : 0);
            w.local_pairs.push_back(&p);
        }
        break;
    }
    case run_mode::fanout: {
        fanout_state& f = state.fan;
        f.room = o.prefix + "room";
        f.members = static_cast<std::uint32_t>(o.members);
        std::size_t ring = 1;
        while (ring < o.window) ring *= 2;
        f.ring_mask = ring - 1;
        f.got.reset(new std::atomic<std::uint32_t>[ring]);
        for (std::size_t i = 0; i < ring; ++i) f.got[i].store(0);
        state.units_total = 1;
        f.publisher = add_conn(*state.workers[0], role::publisher, next_index++, o.prefix + "p");
        f.tmpl = "/say " + f.room + " ";
        f.seq_off = f.tmpl.size();
        f.tmpl += payload_tmpl + "\n";
        if (o.messages) f.budget = o.messages;
        const std::string prefix = "room " + f.room + " " + f.publisher->name + " ";
        for (std::size_t i = 0; i < o.members; ++i) {
            conn* c = add_conn(worker_for(i), role::member, next_index++, o.prefix + "m" + std::to_string(i));
            c->node = i % nodes;
            c->expect_prefix = prefix;
        }
        break;
    }
    case run_mode::idle: {
        std::vector<conn*> all;
        for (std::size_t i = 0; i < o.conns; ++i)
            all.push_back(add_conn(worker_for(i), role::idle, next_index++, o.prefix + "i" + std::to_string(i)));
        const std::size_t n = std::min(o.sample, o.conns);
        for (std::size_t k = 0; k < n; ++k) state.who_sample.push_back(all[k * o.conns / n]);
        if (state.loopback_v4) state.source_addresses = (o.conns + o.per_source - 1) / o.per_source;
        break;
    }
    case run_mode::stored: {
        // Recipients connect first, register and quit (known, offline); the senders connect once
        // the server has closed every recipient (recipient_gone()).
        state.pairs.resize(o.senders);
        state.units_total = o.senders;
        state.recipients_total = o.senders;
        for (std::size_t i = 0; i < o.senders; ++i) {
            pair_state& p = state.pairs[i];
            worker& w = worker_for(i);
            p.index = i;
            p.receiver = add_conn(w, role::recipient, next_index++, o.prefix + "r" + std::to_string(i));
            w.conns.push_back(std::make_unique<conn>(w, role::sender, next_index++, o.prefix + "s" + std::to_string(i)));
            p.sender = w.conns.back().get();
            w.deferred.push_back(p.sender);
            p.sender->pair = p.receiver->pair = &p;
            p.tmpl = "/msg " + p.receiver->name + " ";
            p.seq_off = p.tmpl.size();
            p.tmpl += payload_tmpl + "\n";
            p.sender->expect_prefix = "ok queued " + p.receiver->name;
            p.sent_at.assign(o.window, 0);
            if (o.messages) p.budget = o.messages / o.senders + (i < o.messages % o.senders ? 1 : 0);
            w.local_pairs.push_back(&p);
        }
        break;
    }
    case run_mode::presence: {
        presence_state& ps = state.pres;
        ps.users = o.users;
        ps.user_prefix = o.prefix + "u";
        ps.online_sent.reset(new std::atomic<i64>[o.users]);
        for (std::size_t i = 0; i < o.users; ++i) ps.online_sent[i].store(0);
        ps.cycles.assign(o.users, 0);
        ps.busy.assign(o.users, 0);
        ps.unix_start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        for (std::size_t j = 0; j < o.watchers; ++j)
            add_conn(worker_for(j), role::watcher, next_index++, o.prefix + "w" + std::to_string(j));
        for (std::size_t i = 0; i < o.users; ++i) worker_for(i).own_users.push_back(i);
        // The cycling connections are not opened at setup: each starts its first cycle with the
        // traffic. User i and connection k belong to thread i % threads and k % threads.
        for (std::size_t k = 0; k < o.churn; ++k) {
            worker& w = worker_for(k);
            w.conns.push_back(std::make_unique<conn>(w, role::subject, 0, std::string()));
            w.subjects.push_back(w.conns.back().get());
        }
        state.units_total = o.churn;
        break;
    }
    }

    state.progress = ::isatty(STDERR_FILENO) == 1;
    state.t_setup_start = now_ns();
    state.next_print = state.t_setup_start + ns_per_s;
    worker& w0 = *state.workers[0];
    asio::signal_set signals(w0.io, SIGINT, SIGTERM);
    signals.async_wait([](const std::error_code& ec, int signo) {
        if (!ec) fail(std::string("interrupted by signal ") + std::to_string(signo));
    });
    state.timer = std::make_unique<asio::steady_timer>(w0.io);
    asio::post(w0.io, [] { tick(); });
    for (auto& w : state.workers) {
        worker* wp = w.get();
        asio::post(wp->io, [wp] { conn::open_next(*wp); });
    }
    for (std::size_t i = 1; i < state.workers.size(); ++i) {
        worker* wp = state.workers[i].get();
        wp->thread = std::thread([wp] {
            auto guard = asio::make_work_guard(wp->io);
            wp->io.run();
        });
    }
    {
        auto guard = asio::make_work_guard(w0.io);
        w0.io.run();
    }
    for (auto& w : state.workers)
        if (w->thread.joinable()) w->thread.join();
    const i64 end_ns = now_ns();

    // ---- results (every thread has stopped) ----
    if (o.mode == run_mode::presence && !state.failed.load() && state.finished.load()) {
        // Every watcher saw each user's transitions exactly: two per cycle of that user.
        for (auto& w : state.workers)
            for (auto& c : w->conns) {
                if (c->rl != role::watcher || state.failed.load()) continue;
                for (std::size_t u = 0; u < o.users; ++u)
                    if (c->events[u] != 2 * state.pres.cycles[u]) {
                        fail("check failed: " + c->who() + " saw " + std::to_string(c->events[u]) +
                             " presence events for " + state.pres.user_prefix + std::to_string(u) + ", expected " +
                             std::to_string(2 * state.pres.cycles[u]) + " (online and offline for each of its " +
                             std::to_string(state.pres.cycles[u]) + " cycles)");
                        break;
                    }
            }
    }
    // An err answer in stored mode did not end the run, but the run fails.
    const bool ok = !state.failed.load() && state.finished.load() && state.error_count.load() == 0;
    if (!ok && state.errors.empty()) state.errors.push_back("stopped before the end");
    std::vector<std::string> details;
    if (state.stalled_run && (o.mode == run_mode::pairs || o.mode == run_mode::stored)) {
        for (const pair_state& p : state.pairs) {
            if (pair_finished(p) == p.sent) continue;
            if (details.size() == 5) {
                details.push_back("...");
                break;
            }
            details.push_back("pair " + std::to_string(p.index) + " " + p.sender->name + " -> " + p.receiver->name +
                              ": sent " + std::to_string(p.sent) +
                              (o.mode == run_mode::stored ? ", answered " : ", delivered ") +
                              std::to_string(pair_finished(p)));
        }
    }
    if (state.stalled_run && o.mode == run_mode::fanout) {
        const u64 sent = state.fan.sent.load();
        for (auto& w : state.workers)
            for (auto& c : w->conns) {
                if (c->rl != role::member || c->next == sent) continue;
                if (details.size() == 5) break;
                details.push_back(c->who() + ": got " + std::to_string(c->next) + " of " + std::to_string(sent));
            }
    }

    histogram hist;
    u64 counted = 0;
    i64 last = 0;
    for (auto& w : state.workers) {
        hist.merge(w->hist);
        counted += w->counted;
        last = std::max(last, w->last_counted_ns);
    }
    const i64 t_measure = state.t_measure.load();
    const double measured_s = t_measure != never && last > t_measure ? double(last - t_measure) / 1e9 : 0;
    const double per_s = measured_s > 0 ? double(counted) / measured_s : 0;
    const u64 members = o.mode == run_mode::fanout ? o.members : 1;
    const u64 messages = counted / members;
    const double msgs_per_s = per_s / double(members);
    const double p50 = hist.quantile(0.5) / 1e3, p99 = hist.quantile(0.99) / 1e3, p999 = hist.quantile(0.999) / 1e3;
    const double lat_max = double(hist.max()) / 1e3, lat_mean = hist.mean() / 1e3;
    const i64 rss_end = (o.server_pid && o.mode != run_mode::idle) ? read_rss_kib(o.server_pid) : state.rss_after_kib;
    const double setup_s = state.ready_at ? double(state.ready_at - state.t_setup_start) / 1e9 : double(end_ns - state.t_setup_start) / 1e9;

    if (o.mode == run_mode::presence) {
        const presence_state& ps = state.pres;
        const bool window = ps.at_measure_ns != 0 && ps.at_end_ns > ps.at_measure_ns;
        const double win_s = window ? double(ps.at_end_ns - ps.at_measure_ns) / 1e9 : 0;
        const u64 cycles = window ? ps.cycles_at_end - ps.cycles_at_measure : 0;
        const u64 transitions = 2 * cycles;
        const u64 events = window ? ps.events_at_end - ps.events_at_measure : 0;
        const double tps = win_s > 0 ? double(transitions) / win_s : 0;
        const double eps = win_s > 0 ? double(events) / win_s : 0;
        const bool cpu = window && ps.cpu_at_measure >= 0 && ps.cpu_at_end >= ps.cpu_at_measure;
        const double cpu_s = cpu ? double(ps.cpu_at_end - ps.cpu_at_measure) / double(::sysconf(_SC_CLK_TCK)) : 0;
        const double cpu_us_per = cpu && transitions ? cpu_s * 1e6 / double(transitions) : 0;
        const bool any = hist.total() > 0;
        if (o.json) {
            std::ostringstream j;
            j << "{\"mode\":\"presence\",\"ok\":" << (ok ? "true" : "false");
            j << ",\"params\":{\"host\":" << json_string(o.host) << ",\"port\":" << o.port << ",\"users\":" << o.users
              << ",\"watchers\":" << o.watchers << ",\"churn\":" << o.churn
              << ",\"warmup_s\":" << json_number(o.warmup_s, 3) << ",\"duration_s\":" << json_number(o.duration_s, 3)
              << ",\"threads\":" << o.threads << ",\"prefix\":" << json_string(o.prefix) << "}";
            j << ",\"setup_s\":" << json_number(setup_s, 3) << ",\"measured_s\":" << json_number(win_s, 3)
              << ",\"cycles\":" << cycles << ",\"transitions\":" << transitions
              << ",\"transitions_per_s\":" << json_number(tps, 0) << ",\"events\":" << events
              << ",\"events_per_s\":" << json_number(eps, 0);
            j << ",\"online_latency_us\":{\"p50\":" << (any ? json_number(p50) : "null")
              << ",\"p99\":" << (any ? json_number(p99) : "null") << ",\"p999\":" << (any ? json_number(p999) : "null")
              << ",\"max\":" << (any ? json_number(lat_max) : "null") << ",\"mean\":" << (any ? json_number(lat_mean) : "null")
              << "}";
            j << ",\"cycles_total\":" << sum_cycles() << ",\"events_total\":" << sum_delivered();
            if (o.server_pid || !o.cpu_pids.empty())
                j << ",\"server_cpu_s\":" << (cpu ? json_number(cpu_s, 2) : "null")
                  << ",\"server_cpu_us_per_transition\":" << (cpu && transitions ? json_number(cpu_us_per, 2) : "null");
            if (o.server_pid)
                j << ",\"server_rss_before_kib\":" << state.rss_before_kib << ",\"server_rss_after_kib\":" << rss_end;
            j << ",\"errors\":" << state.error_count.load() << ",\"error_messages\":[";
            for (std::size_t i = 0; i < state.errors.size(); ++i) j << (i ? "," : "") << json_string(state.errors[i]);
            j << "]}\n";
            std::cout << j.str();
        } else if (ok || state.t_start.load() != 0) {
            std::ostringstream t;
            t << "loadgen presence -> " << server_text() << ": " << o.users << " users, " << o.watchers
              << (o.watchers == 1 ? " watcher" : " watchers") << " (" << with_commas(o.users * o.watchers)
              << " watches), churn " << o.churn << ", warmup " << o.warmup_s << " s, duration " << o.duration_s << " s, "
              << o.threads << (o.threads == 1 ? " thread" : " threads") << "\n";
            if (o.watchers)
                t << "  setup       " << o.watchers << (o.watchers == 1 ? " watcher" : " watchers")
                  << " registered, each watching every user, in " << fixed(setup_s, 2) << " s\n";
            else
                t << "  setup       no watchers: the churn alone (the baseline)\n";
            t << "  transitions " << with_commas(transitions) << " in " << fixed(win_s, 3) << " s (" << with_commas(cycles)
              << " cycles of connect, /register, /quit: online then offline; " << with_commas(sum_cycles())
              << " with warmup)\n";
            t << "  throughput  " << rate_text(tps) << " transitions/s, " << rate_text(eps)
              << " presence events/s delivered"
              << (ok && o.watchers ? " (each checked: alternating, last seen from this run)\n" : "\n");
            if (any)
                t << "  latency     /register sent -> watcher sees online: p50 " << fixed(p50, 1) << " us, p99 "
                  << fixed(p99, 1) << " us, p99.9 " << fixed(p999, 1) << " us, max " << fixed(lat_max, 1) << " us\n";
            if (o.server_pid || !o.cpu_pids.empty()) {
                if (cpu)
                    t << "  server CPU  " << fixed(cpu_s, 2) << " s in the measured window (" << fixed(100 * cpu_s / win_s, 0)
                      << "% of a core): " << fixed(cpu_us_per, 2) << " us per transition"
                      << (o.watchers ? " (compare with --watchers 0 for the churn alone)" : " (churn alone)") << "\n";
                else
                    t << "  server CPU  not measured (cannot read /proc/PID/stat of --server-pid or --cpu-pids)\n";
            }
            t << "  errors      " << state.error_count.load();
            if (ok) t << "\n";
            else t << " (FAILED: " << state.errors.front() << ")\n";
            std::cout << t.str();
        }
    } else if (o.json) {
        std::ostringstream j;
        j << "{\"mode\":" << json_string(mode_name(o.mode)) << ",\"ok\":" << (ok ? "true" : "false");
        j << ",\"params\":{\"host\":" << json_string(o.host) << ",\"port\":" << o.port;
        if (!o.ports.empty()) {
            j << ",\"ports\":[";
            for (std::size_t i = 0; i < o.ports.size(); ++i) j << (i ? "," : "") << o.ports[i];
            j << "]";
        }
        if (o.mode == run_mode::pairs) j << ",\"pairs\":" << o.pairs;
        if (o.mode == run_mode::stored) j << ",\"senders\":" << o.senders;
        if (o.acked) j << ",\"acked\":true,\"ack_every\":" << o.ack_every;
        if (o.mode == run_mode::fanout) j << ",\"members\":" << o.members;
        if (o.mode == run_mode::idle)
            j << ",\"conns\":" << o.conns << ",\"sample\":" << o.sample << ",\"per_source\":" << o.per_source
              << ",\"hold_s\":" << json_number(o.duration_s, 3);
        if (o.mode != run_mode::idle) {
            j << ",\"payload\":" << o.payload << ",\"window\":" << o.window << ",\"warmup_s\":" << json_number(o.warmup_s, 3);
            if (o.messages) j << ",\"messages\":" << o.messages;
            else j << ",\"duration_s\":" << json_number(o.duration_s, 3);
        }
        j << ",\"threads\":" << o.threads << ",\"prefix\":" << json_string(o.prefix) << "}";
        if (o.mode != run_mode::idle) {
            j << (o.mode == run_mode::stored ? ",\"stored\":" : ",\"delivered\":") << counted
              << ",\"measured_s\":" << json_number(measured_s, 3)
              << ",\"msgs_per_s\":" << json_number(msgs_per_s, 0);
            if (o.mode == run_mode::fanout)
                j << ",\"messages\":" << messages << ",\"deliveries_per_s\":" << json_number(per_s, 0);
            const bool any = hist.total() > 0;
            j << ",\"latency_us\":{\"p50\":" << (any ? json_number(p50) : "null")
              << ",\"p99\":" << (any ? json_number(p99) : "null") << ",\"p999\":" << (any ? json_number(p999) : "null")
              << ",\"max\":" << (any ? json_number(lat_max) : "null") << ",\"mean\":" << (any ? json_number(lat_mean) : "null")
              << "}";
            j << (o.mode == run_mode::stored ? ",\"answered_total\":" : ",\"delivered_total\":") << sum_delivered();
            if (o.acked) j << ",\"acks\":" << sum_acks();
        } else {
            j << ",\"connected\":" << state.connected.load() << ",\"registered\":" << state.ready.load()
              << ",\"setup_s\":" << json_number(setup_s, 3) << ",\"source_addresses\":" << state.source_addresses
              << ",\"alive_checked\":" << state.who_done.load();
        }
        if (o.server_pid) {
            j << ",\"server_rss_before_kib\":" << state.rss_before_kib << ",\"server_rss_after_kib\":" << rss_end;
            if (o.mode == run_mode::idle && rss_end >= 0 && state.ready.load())
                j << ",\"server_rss_per_conn_bytes\":"
                  << json_number(double(rss_end - state.rss_before_kib) * 1024.0 / double(state.ready.load()), 0);
        }
        j << ",\"errors\":" << state.error_count.load() << ",\"error_messages\":[";
        for (std::size_t i = 0; i < state.errors.size(); ++i) j << (i ? "," : "") << json_string(state.errors[i]);
        j << "]";
        j << state.error_kinds.json();
        if (!details.empty()) {
            j << ",\"incomplete\":[";
            for (std::size_t i = 0; i < details.size(); ++i) j << (i ? "," : "") << json_string(details[i]);
            j << "]";
        }
        j << "}\n";
        std::cout << j.str();
    } else if (ok || (o.mode != run_mode::idle && state.t_start.load() != 0)) {
        std::ostringstream t;
        t << "loadgen " << mode_name(o.mode) << " -> " << server_text() << ": ";
        if (o.mode == run_mode::pairs) t << o.pairs << (o.pairs == 1 ? " pair" : " pairs");
        if (o.mode == run_mode::stored)
            t << o.senders << (o.senders == 1 ? " sender" : " senders") << " to offline recipients";
        if (o.acked) t << " acked (/ack every " << o.ack_every << ")";
        if (o.mode == run_mode::fanout) t << "1 publisher, room of " << o.members << " members";
        if (o.mode == run_mode::idle) t << o.conns << " connections";
        if (o.mode != run_mode::idle) {
            t << ", payload " << o.payload << " B, window " << o.window << ", warmup " << o.warmup_s << " s, ";
            if (o.messages) t << o.messages << " messages";
            else t << "duration " << o.duration_s << " s";
        }
        t << ", " << o.threads << (o.threads == 1 ? " thread" : " threads") << "\n";
        if (o.mode != run_mode::idle) {
            if (o.mode == run_mode::stored)
                t << "  stored      " << with_commas(counted) << " messages answered ok queued";
            else if (o.mode == run_mode::pairs)
                t << "  delivered   " << with_commas(counted) << " messages";
            else
                t << "  delivered   " << with_commas(messages) << " messages x " << o.members << " members = "
                  << with_commas(counted) << " deliveries";
            if (o.mode == run_mode::stored)
                t << " in " << fixed(measured_s, 3) << " s (" << with_commas(sum_delivered())
                  << (ok ? " answers with warmup, each ok queued for the sender's recipient)\n"
                         : " answers with warmup, before the run failed)\n");
            else
                t << " in " << fixed(measured_s, 3) << " s (" << with_commas(sum_delivered())
                  << (ok ? " with warmup, each checked: complete, in order, right sender, intact)\n"
                         : " with warmup, before the run failed)\n");
            if (o.acked)
                t << "  acked       " << with_commas(sum_acks()) << " cumulative /ack lines sent"
                  << (ok ? " (every dm seq checked: 1, 2, 3, ... per receiver)\n" : "\n");
            if (o.mode == run_mode::pairs || o.mode == run_mode::stored) {
                t << "  throughput  " << rate_text(msgs_per_s) << " msgs/s\n";
            } else {
                t << "  throughput  " << rate_text(msgs_per_s) << " msgs/s, " << rate_text(per_s) << " deliveries/s\n";
            }
            if (counted == 0)
                t << "  latency     n/a (no message measured)\n";
            else
                t << "  latency     " << (o.mode == run_mode::stored ? "/msg sent -> ok queued: " : "") << "p50 "
                  << fixed(p50, 1) << " us, p99 " << fixed(p99, 1) << " us, p99.9 "
                  << fixed(p999, 1) << " us, max " << fixed(lat_max, 1) << " us, mean " << fixed(lat_mean, 1) << " us\n";
        } else {
            t << "  registered  " << with_commas(state.ready.load()) << " of " << with_commas(o.conns) << " in "
              << fixed(setup_s, 2) << " s over " << state.source_addresses << " source address"
              << (state.source_addresses == 1 ? "" : "es") << " (fd limit " << fd_limit << ")\n";
            t << "  alive       " << state.who_done.load() << " of " << state.who_sample.size()
              << " sampled connections answered /who listing themselves\n";
        }
        if (o.server_pid) {
            t << "  server RSS  " << with_commas(static_cast<u64>(std::max<i64>(0, state.rss_before_kib))) << " KiB before, "
              << (rss_end >= 0 ? with_commas(static_cast<u64>(rss_end)) : std::string("?")) << " KiB after";
            if (o.mode == run_mode::idle && rss_end >= 0 && state.ready.load())
                t << ": " << fixed(double(rss_end - state.rss_before_kib) * 1024.0 / double(state.ready.load()), 0)
                  << " bytes per connection";
            t << "\n";
        } else if (o.mode == run_mode::idle) {
            t << "  server RSS  not measured (give --server-pid PID)\n";
        }
        t << "  errors      " << state.error_count.load();
        if (ok)
            t << (o.mode == run_mode::idle     ? "\n"
                  : o.mode == run_mode::stored ? " (every answer was ok queued)\n"
                                               : " (every delivery checked out)\n");
        else t << " (FAILED: " << state.errors.front() << ")\n";
        t << state.error_kinds.text();
        std::cout << t.str();
    }
    std::cout.flush();
    if (!ok) {
        for (const std::string& e : state.errors) std::cerr << "loadgen: error: " << e << "\n";
        for (const std::string& d : details) std::cerr << "loadgen:   " << d << "\n";
        return 1;
    }
    return 0;
}
