// jetstream_bench: the durable figures of `loadgen stored` and `loadgen pairs --acked` measured
// against NATS JetStream (nats-server -js, file storage), on the official NATS C client (nats.c,
// Debian/Ubuntu libnats-dev). scripts/bench-durable runs both against tcp_chat
// --offline sqlite:PATH and nats-server in one session; docs/loadgen.md, "JetStream", describes
// the method. Usage: `jetstream_bench --help`.
//
// Modes:
//   stored  N publishers, each on its own connection, publish 64-byte messages asynchronously to
//           a file-storage stream (subject <prefix>.<i>), at most W PubAcks pending each
//           (js_PublishAsync, jsOptions.PublishAsync.MaxPending = W); counts PubAcks per second.
//           The stream keeps every message (limits retention): nobody consumes them, as nobody
//           is online to take `loadgen stored`'s messages.
//   e2e     N pairs: publisher i publishes as above, its own push consumer (its own connection,
//           filter subject <prefix>.<i>, AckAll) gets each message, checks it and acknowledges
//           cumulatively every --ack-every messages (or at once when it has everything sent so
//           far), as `loadgen pairs --acked --ack-every 64` does; at most W messages between
//           publish and delivery per pair. Interest retention: an acknowledged message is removed
//           from the stream, as the switchboard inbox removes it.
//
// Counting, as in loadgen: after --warmup, a message counts when its PubAck (stored) or its
// delivery (e2e) arrives and its send time falls after the warmup; throughput is counted
// messages / (time of the last counted one - end of warmup); latency from the send time carried
// in the payload (loadgen's layout: 10-digit sequence number, 16-digit timestamp, filler).
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "load_common.hpp"

namespace {

using namespace sbload;

constexpr const char* usage_text = R"(usage: jetstream_bench MODE [options]

The durable figures of loadgen (docs/loadgen.md) against NATS JetStream, with the NATS C client.
Start nats-server with JetStream and file storage first: nats-server -js -sd DIR -p 4222.
Exit status 0 when every PubAck was positive and every delivery checked out (1: a failure or an
error PubAck; 2: bad usage).

modes:
  stored   N publishers publish asynchronously to a file-storage stream, at most W PubAcks
           pending each (the figure of `loadgen stored`); reports PubAcks per second
  e2e      N publisher/consumer pairs: each publisher's messages go to its own push consumer,
           which checks them and acknowledges cumulatively (AckAll), as
           `loadgen pairs --acked`; reports delivered messages per second

options:
  --url URL              the server (default nats://127.0.0.1:4222)
  --senders N            stored: publishers (default 100)
  --pairs N              e2e: publisher/consumer pairs (default 100)
  --window W             stored: PubAcks pending per publisher; e2e: messages published and not
                         yet delivered per pair (default 256)
  --payload BYTES        message size, 27 or more (default 64)
  --warmup SECONDS       traffic at the start that is checked but not counted (default 1)
  --duration SECONDS     measured time after the warmup (default 5)
  --ack-every N          e2e: acknowledge once N messages are unacknowledged, or at once when
                         the consumer has every message sent so far (default 64)
  --max-ack-pending N    e2e: the consumer's MaxAckPending (default 1000)
  --stream NAME          the stream, deleted and created anew (default SBBENCH); its subjects
                         are <prefix>.> (--prefix, default sbbench)
  --streams one|per-pair one stream for every publisher's subject (default), or one stream per
                         publisher, <stream>_<i> with the subject <prefix>.<i>
  --prefix NAME          subject prefix (default sbbench)
  --keep-stream          leave the stream on the server at the end (default: deleted)
  --timeout SECONDS      fail when nothing progresses for this long (default 10)
  --json                 one JSON object on stdout instead of the text report
  --help
)";

struct options {
    bool stored = true;
    bool mode_given = false;
    std::string url = "nats://127.0.0.1:4222";
    std::size_t n = 100;
    std::size_t window = 256;
    std::size_t payload = 64;
    double warmup_s = 1;
    double duration_s = 5;
    std::size_t ack_every = 64;
    std::int64_t max_ack_pending = 1000;
    std::string stream = "SBBENCH";
    std::string prefix = "sbbench";
    bool keep_stream = false;
    bool stream_per_unit = false; // --streams per-pair: stream <stream>_<i> for subject <prefix>.<i>
    double timeout_s = 10;
    bool json = false;
};

// One publisher, and in e2e mode its consumer. Fields are written by one thread each: the driver
// (sent, stopping), the PubAck callback thread of its connection (stored: hist, counted), the
// consumer's delivery thread (e2e: next, acked, hist, counted); `done` and `pub_acks` are read by
// the driver.
struct unit {
    std::size_t index = 0;
    std::string subject;
    std::string stream; // the stream holding `subject`
    natsConnection* pub_nc = nullptr;
    jsCtx* pub_js = nullptr;
    natsConnection* sub_nc = nullptr;
    jsCtx* sub_js = nullptr;
    natsSubscription* sub = nullptr;
    std::atomic<u64> sent{0};
    std::atomic<u64> done{0};     // stored: PubAcks (positive or not); e2e: messages delivered
    std::atomic<u64> pub_acks{0}; // positive PubAcks
    bool stopping = false;
    // consumer (e2e)
    u64 next = 0;                 // next expected payload sequence number
    u64 acked = 0;                // messages acknowledged (cumulatively)
    u64 acks_sent = 0;
    natsMsg* last = nullptr;      // the last message delivered, kept for the final acknowledgement
    // measurement (callback thread)
    histogram hist;
    u64 counted = 0;
    i64 last_counted_ns = 0;
};

struct run_state {
    options opt;
    std::string pad;
    std::vector<std::unique_ptr<unit>> units;
    std::atomic<i64> t_measure{never};
    std::atomic<i64> t_end{never};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::vector<std::string> errors;
    error_tally error_kinds; // error PubAcks: count per text
    std::atomic<u64> error_count{0};
    // The driver sleeps when every window is full; a callback that frees a slot wakes it.
    std::mutex wake_mutex;
    std::condition_variable wake;
    std::atomic<bool> sleeping{false};
};

run_state* g = nullptr;

void fail(const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(g->error_mutex);
        if (g->errors.size() < 20) g->errors.push_back(message);
    }
    g->error_count.fetch_add(1);
    g->failed.store(true);
}

// An error PubAck: counted per kind, the first of each kind kept; the run goes on and fails at
// the end (as an `err` answer in `loadgen stored`).
void note_error(const std::string& kind, const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(g->error_mutex);
        if (g->error_kinds.add(kind) && g->errors.size() < 20) g->errors.push_back(message);
    }
    g->error_count.fetch_add(1);
}

std::string nats_error(natsStatus s) {
    std::string text = natsStatus_GetText(s);
    const char* last = nats_GetLastError(nullptr);
    if (last && *last && text != last) text += std::string(": ") + last;
    return text;
}

void wake_driver() {
    if (g->sleeping.load()) {
        std::lock_guard<std::mutex> lock(g->wake_mutex);
        g->wake.notify_one();
    }
}

void count(unit& u, const char* data, i64 now) {
    u64 ts = 0;
    if (!get_digits(data + seq_digits + 1, ts_digits, ts)) return;
    if (static_cast<i64>(ts) < g->t_measure.load(std::memory_order_relaxed)) return;
    u.hist.record(static_cast<u64>(std::max<i64>(0, now - static_cast<i64>(ts))));
    ++u.counted;
    u.last_counted_ns = now;
}

// Stored and e2e: a PubAck (or an error instead) for one message of the unit's publisher.
void on_puback(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    unit& u = *static_cast<unit*>(closure);
    const i64 now = now_ns();
    if (pa) {
        u.pub_acks.fetch_add(1, std::memory_order_relaxed);
        if (g->opt.stored && natsMsg_GetDataLength(msg) == static_cast<int>(g->opt.payload))
            count(u, natsMsg_GetData(msg), now);
    } else {
        const std::string text = pae && pae->ErrText ? pae->ErrText : "unknown error";
        note_error(text, "error PubAck for " + u.subject + ": " + text +
                             (pae ? " (status " + std::string(natsStatus_GetText(pae->Err)) + ", JetStream error code " +
                                        std::to_string(static_cast<int>(pae->ErrCode)) + ")"
                                  : std::string()));
    }
    natsMsg_Destroy(msg);
    if (g->opt.stored) {
        u.done.fetch_add(1);
        wake_driver();
    }
}

// E2e: a delivery to the unit's consumer. Checked as loadgen checks one: the payload is intact,
// its sequence number is exactly the next one (no loss, no reordering, no duplicate), it was
// sent, its timestamp is not in the future; JetStream's own consumer sequence is consecutive and
// the message is delivered for the first time.
void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    unit& u = *static_cast<unit*>(closure);
    const i64 now = now_ns();
    const char* data = natsMsg_GetData(msg);
    const std::size_t size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
    const std::size_t want = g->opt.payload;
    u64 seq = 0, ts = 0;
    if (size != want || !get_digits(data, seq_digits, seq) || data[seq_digits] != ' ' ||
        !get_digits(data + seq_digits + 1, ts_digits, ts) ||
        std::memcmp(data + header_bytes, g->pad.data(), want - header_bytes) != 0) {
        fail("check failed: corrupted payload delivered to the consumer of " + u.subject + " (" + std::to_string(size) +
             " bytes, expected " + std::to_string(want) + ")");
        natsMsg_Destroy(msg);
        return;
    }
    if (seq != u.next) {
        fail(std::string("check failed: ") + (seq < u.next ? "duplicate or reordered" : "lost or reordered") +
             " delivery to the consumer of " + u.subject + ": expected seq " + std::to_string(u.next) + ", got " +
             std::to_string(seq));
        natsMsg_Destroy(msg);
        return;
    }
    if (seq >= u.sent.load() || static_cast<i64>(ts) > now) {
        fail("check failed: the consumer of " + u.subject + " got seq " + std::to_string(seq) +
             " which was never sent, or a timestamp from the future");
        natsMsg_Destroy(msg);
        return;
    }
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        fail("check failed: no JetStream metadata on a delivery to the consumer of " + u.subject);
        natsMsg_Destroy(msg);
        return;
    }
    const bool consecutive = meta->Sequence.Consumer == u.next + 1 && meta->NumDelivered == 1;
    const std::string meta_text = "consumer seq " + std::to_string(meta->Sequence.Consumer) + ", delivered " +
                                  std::to_string(meta->NumDelivered) + " time(s)";
    jsMsgMetaData_Destroy(meta);
    if (!consecutive) {
        fail("check failed: delivery " + std::to_string(u.next + 1) + " to the consumer of " + u.subject + " has " +
             meta_text + " (a redelivery or a gap)");
        natsMsg_Destroy(msg);
        return;
    }
    ++u.next;
    count(u, data, now);
    // Cumulative acknowledgement (AckAll): once --ack-every wait for one, or when the consumer has
    // everything sent so far.
    if (u.next - u.acked >= g->opt.ack_every || u.next == u.sent.load()) {
        const natsStatus s = natsMsg_Ack(msg, nullptr);
        if (s != NATS_OK) fail("acknowledging on the consumer of " + u.subject + " failed: " + nats_error(s));
        u.acked = u.next;
        ++u.acks_sent;
    }
    natsMsg_Destroy(u.last);
    u.last = msg;
    u.done.store(u.next);
    wake_driver();
}

// ---- setup --------------------------------------------------------------------------------------

natsStatus connect(natsConnection** nc, bool global_delivery) {
    natsOptions* o = nullptr;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, g->opt.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 5000);
    // Consumers' callbacks share the library's delivery thread pool (one thread by default), as
    // loadgen's receivers share its one event loop; the PubAck callbacks of each publisher run on
    // a thread of its JetStream context (nats.c gives that subscription its own).
    if (s == NATS_OK && global_delivery) s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK) s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

bool setup() {
    const options& o = g->opt;
    for (std::size_t i = 0; i < o.n; ++i) {
        auto u = std::make_unique<unit>();
        u->index = i;
        u->subject = o.prefix + "." + std::to_string(i);
        natsStatus s = connect(&u->pub_nc, false);
        if (s != NATS_OK) {
            fail("cannot connect to " + o.url + ": " + nats_error(s) +
                 " (is nats-server running there, started with -js?)");
            return false;
        }
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = static_cast<int64_t>(o.window);
        jo.PublishAsync.AckHandler = on_puback;
        jo.PublishAsync.AckHandlerClosure = u.get();
        jo.PublishAsync.StallWait = static_cast<int64_t>(o.timeout_s * 1000);
        s = natsConnection_JetStream(&u->pub_js, u->pub_nc, &jo);
        if (s != NATS_OK) {
            fail("cannot get a JetStream context: " + nats_error(s));
            return false;
        }
        g->units.push_back(std::move(u));
    }
    // Fresh streams: file storage, one replica; one stream for every subject (<prefix>.>), or one
    // per publisher (--streams per-pair).
    jsCtx* js = g->units[0]->pub_js;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = NATS_OK;
    for (auto& u : g->units) {
        u->stream = o.stream_per_unit ? o.stream + "_" + std::to_string(u->index) : o.stream;
        if (!o.stream_per_unit && u->index > 0) continue;
        (void)js_DeleteStream(js, u->stream.c_str(), nullptr, &jerr); // not found the first time
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const std::string subjects = o.stream_per_unit ? u->subject : o.prefix + ".>";
        const char* subject_list[] = {subjects.c_str()};
        cfg.Name = u->stream.c_str();
        cfg.Subjects = subject_list;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Retention = o.stored ? js_LimitsPolicy : js_InterestPolicy;
        jsStreamInfo* si = nullptr;
        s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
        jsStreamInfo_Destroy(si);
        if (s != NATS_OK) {
            fail("cannot create the stream " + u->stream + ": " + nats_error(s) + " (JetStream error code " +
                 std::to_string(static_cast<int>(jerr)) + "; is nats-server started with -js?)");
            return false;
        }
    }
    if (o.stored) return true;
    for (auto& u : g->units) {
        s = connect(&u->sub_nc, true);
        if (s == NATS_OK) s = natsConnection_JetStream(&u->sub_js, u->sub_nc, nullptr);
        if (s != NATS_OK) {
            fail("cannot connect a consumer to " + o.url + ": " + nats_error(s));
            return false;
        }
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = u->stream.c_str();
        so.ManualAck = true; // acknowledged by on_msg, cumulatively
        so.Config.AckPolicy = js_AckAll;
        so.Config.DeliverPolicy = js_DeliverAll;
        so.Config.MaxAckPending = o.max_ack_pending;
        s = js_Subscribe(&u->sub, u->sub_js, u->subject.c_str(), on_msg, u.get(), nullptr, &so, &jerr);
        if (s != NATS_OK) {
            fail("cannot create the consumer of " + u->subject + ": " + nats_error(s) + " (JetStream error code " +
                 std::to_string(static_cast<int>(jerr)) + ")");
            return false;
        }
        (void)natsSubscription_SetPendingLimits(u->sub, -1, -1);
    }
    return true;
}

// ---- driver -------------------------------------------------------------------------------------

// Publishes on every unit whose window has room, in batches that share one send time (as
// loadgen's), until the measured time is over; sleeps while every window is full.
void drive() {
    const options& o = g->opt;
    std::string buf = std::string(seq_digits, '0') + " " + std::string(ts_digits, '0') + g->pad;
    u64 progress_mark = ~u64{0};
    i64 progress_at = now_ns();
    for (;;) {
        if (g->failed.load()) return;
        const i64 now = now_ns();
        bool active = false, published = false;
        u64 progress = 0;
        for (auto& up : g->units) {
            unit& u = *up;
            const u64 done = u.done.load();
            progress += done;
            if (u.stopping) {
                active = active || done != u.sent.load(std::memory_order_relaxed);
                continue;
            }
            active = true;
            if (now >= g->t_end.load(std::memory_order_relaxed)) {
                u.stopping = true;
                continue;
            }
            u64 sent = u.sent.load(std::memory_order_relaxed);
            if (sent - done >= o.window) continue;
            const u64 k = o.window - (sent - done);
            put_digits(&buf[seq_digits + 1], static_cast<u64>(now), ts_digits);
            for (u64 i = 0; i < k; ++i, ++sent) {
                put_digits(&buf[0], sent, seq_digits);
                // Counted as sent first: the consumer may get it before this call returns.
                u.sent.store(sent + 1);
                const natsStatus s =
                    js_PublishAsync(u.pub_js, u.subject.c_str(), buf.data(), static_cast<int>(buf.size()), nullptr);
                if (s != NATS_OK) {
                    fail("js_PublishAsync on " + u.subject + " failed: " + nats_error(s));
                    return;
                }
            }
            published = true;
        }
        if (!active) return;
        if (progress != progress_mark) {
            progress_mark = progress;
            progress_at = now;
        } else if (now - progress_at > static_cast<i64>(o.timeout_s * ns_per_s)) {
            std::string missing;
            for (auto& u : g->units)
                if (u->done.load() != u->sent.load() && missing.size() < 300)
                    missing += " " + u->subject + ": sent " + std::to_string(u->sent.load()) + ", " +
                               (o.stored ? "PubAcks " : "delivered ") + std::to_string(u->done.load()) + ";";
            fail("no progress for " + fixed(o.timeout_s, 0) + " s:" + missing);
            return;
        }
        if (published) continue;
        // Every window is full: sleep until a callback frees a slot (or 1 ms, to watch the clock).
        std::unique_lock<std::mutex> lock(g->wake_mutex);
        g->sleeping.store(true);
        bool room = false;
        for (auto& u : g->units)
            if (!u->stopping && u->sent.load(std::memory_order_relaxed) - u->done.load() < o.window) room = true;
        if (!room) g->wake.wait_for(lock, std::chrono::milliseconds(1));
        g->sleeping.store(false);
    }
}

// ---- arguments ----------------------------------------------------------------------------------

bool parse_size(std::string_view v, std::size_t& out, std::size_t min, std::size_t max) {
    return parse_number<std::size_t>(v, out, min, max);
}

int parse_args(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") return 1;
        if (a == "--json") { o.json = true; continue; }
        if (a == "--keep-stream") { o.keep_stream = true; continue; }
        if (a.substr(0, 2) != "--") {
            if (o.mode_given || (a != "stored" && a != "e2e")) {
                std::cerr << "jetstream_bench: unexpected argument " << a << " (MODE is stored or e2e; see --help)\n";
                return 2;
            }
            o.stored = a == "stored";
            o.mode_given = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << "jetstream_bench: " << a << " needs a value (see --help)\n";
            return 2;
        }
        const std::string_view v = argv[++i];
        const std::size_t big = std::size_t{1} << 24;
        bool ok = true;
        std::size_t mp = 0;
        if (a == "--url") o.url = std::string(v);
        else if (a == "--senders" || a == "--pairs") { ok = parse_size(v, o.n, 1, 100000); }
        else if (a == "--window") ok = parse_size(v, o.window, 1, big);
        else if (a == "--payload") ok = parse_size(v, o.payload, header_bytes, std::size_t{1} << 20);
        else if (a == "--warmup") ok = parse_seconds(v, o.warmup_s, 0);
        else if (a == "--duration") ok = parse_seconds(v, o.duration_s, 0.001);
        else if (a == "--ack-every") ok = parse_size(v, o.ack_every, 1, big);
        else if (a == "--max-ack-pending") { ok = parse_size(v, mp, 1, big); o.max_ack_pending = static_cast<std::int64_t>(mp); }
        else if (a == "--stream") o.stream = std::string(v);
        else if (a == "--streams") {
            ok = v == "one" || v == "per-pair";
            o.stream_per_unit = v == "per-pair";
        }
        else if (a == "--prefix") o.prefix = std::string(v);
        else if (a == "--timeout") ok = parse_seconds(v, o.timeout_s, 0.1);
        else {
            std::cerr << "jetstream_bench: unknown option " << a << " (see --help)\n";
            return 2;
        }
        if (!ok || v.empty()) {
            std::cerr << "jetstream_bench: bad value for " << a << ": " << v << " (see --help)\n";
            return 2;
        }
    }
    if (!o.mode_given) {
        std::cerr << "jetstream_bench: give a mode: stored or e2e (see --help)\n";
        return 2;
    }
    return 0;
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
    state.pad = make_padding(o.payload - header_bytes);

    bool ok = setup();
    u64 stream_msgs_after = 0;
    bool stream_known = false;
    i64 t_measure = never;
    if (ok) {
        const i64 start = now_ns();
        t_measure = start + static_cast<i64>(o.warmup_s * ns_per_s);
        state.t_measure.store(t_measure);
        state.t_end.store(t_measure + static_cast<i64>(o.duration_s * ns_per_s));
        drive(); // returns when every message sent is PubAcked (stored) or delivered (e2e)
        // E2e: every PubAck too, then the consumer's final cumulative acknowledgement.
        if (!state.failed.load() && !o.stored) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = static_cast<int64_t>(o.timeout_s * 1000);
            for (auto& u : state.units) {
                const natsStatus s = js_PublishAsyncComplete(u->pub_js, &po);
                if (s != NATS_OK) fail("PubAcks missing on " + u->subject + ": " + nats_error(s));
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100)); // duplicates or strays
        for (auto& u : state.units) {
            if (u->last && u->acked < u->next) {
                const natsStatus s = natsMsg_Ack(u->last, nullptr);
                if (s != NATS_OK) fail("final acknowledgement on " + u->subject + " failed: " + nats_error(s));
                u->acked = u->next;
                ++u->acks_sent;
            }
        }
        if (!o.stored) {
            for (auto& u : state.units) natsConnection_Flush(u->sub_nc);
            std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the server removes acknowledged messages
        }
        stream_known = true;
        for (auto& u : state.units) {
            if (!o.stream_per_unit && u->index > 0) break;
            jsStreamInfo* si = nullptr;
            if (js_GetStreamInfo(&si, state.units[0]->pub_js, u->stream.c_str(), nullptr, nullptr) == NATS_OK && si)
                stream_msgs_after += si->State.Msgs;
            else
                stream_known = false;
            jsStreamInfo_Destroy(si);
        }
        ok = !state.failed.load() && state.error_count.load() == 0;
    }

    // ---- results ----
    histogram hist;
    u64 counted = 0, sent_total = 0, done_total = 0, acks = 0, pubacks = 0;
    i64 last = 0;
    for (auto& u : state.units) {
        hist.merge(u->hist);
        counted += u->counted;
        last = std::max(last, u->last_counted_ns);
        sent_total += u->sent.load();
        done_total += u->done.load();
        acks += u->acks_sent;
        pubacks += u->pub_acks.load();
    }
    const double measured_s = t_measure != never && last > t_measure ? double(last - t_measure) / 1e9 : 0;
    const double per_s = measured_s > 0 ? double(counted) / measured_s : 0;
    const bool any = hist.total() > 0;
    const double p50 = hist.quantile(0.5) / 1e3, p99 = hist.quantile(0.99) / 1e3, p999 = hist.quantile(0.999) / 1e3;
    const double lat_max = double(hist.max()) / 1e3, lat_mean = hist.mean() / 1e3;
    const char* mode = o.stored ? "stored" : "e2e";
    if (o.json) {
        std::ostringstream j;
        j << "{\"tool\":\"jetstream_bench\",\"mode\":\"" << mode << "\",\"ok\":" << (ok ? "true" : "false");
        j << ",\"params\":{\"url\":" << json_string(o.url) << (o.stored ? ",\"senders\":" : ",\"pairs\":") << o.n
          << ",\"payload\":" << o.payload << ",\"window\":" << o.window << ",\"warmup_s\":" << json_number(o.warmup_s, 3)
          << ",\"duration_s\":" << json_number(o.duration_s, 3) << ",\"stream\":" << json_string(o.stream)
          << ",\"streams\":\"" << (o.stream_per_unit ? "per-pair" : "one") << "\""
          << ",\"storage\":\"file\",\"retention\":\"" << (o.stored ? "limits" : "interest") << "\"";
        if (!o.stored) j << ",\"ack_policy\":\"all\",\"ack_every\":" << o.ack_every << ",\"max_ack_pending\":" << o.max_ack_pending;
        j << "}";
        j << (o.stored ? ",\"stored\":" : ",\"delivered\":") << counted << ",\"measured_s\":" << json_number(measured_s, 3)
          << ",\"msgs_per_s\":" << json_number(per_s, 0);
        j << ",\"latency_us\":" << latency_json(hist);
        j << ",\"sent_total\":" << sent_total << ",\"puback_total\":" << pubacks;
        if (!o.stored) j << ",\"delivered_total\":" << done_total << ",\"acks\":" << acks;
        if (stream_known) j << ",\"stream_msgs_after\":" << stream_msgs_after;
        j << ",\"errors\":" << state.error_count.load() << ",\"error_messages\":[";
        for (std::size_t i = 0; i < state.errors.size(); ++i) j << (i ? "," : "") << json_string(state.errors[i]);
        j << "]";
        j << state.error_kinds.json();
        j << "}\n";
        std::cout << j.str();
    } else {
        std::ostringstream t;
        t << "jetstream_bench " << mode << " -> " << o.url << ": " << o.n
          << (o.stored ? " publishers, file storage, limits retention" : " publisher/consumer pairs, file storage, interest retention, AckAll every ")
          << (o.stored ? std::string() : std::to_string(o.ack_every)) << ", payload " << o.payload << " B, window "
          << o.window << ", warmup " << o.warmup_s << " s, duration " << o.duration_s << " s\n";
        if (o.stored)
            t << "  stored      " << with_commas(counted) << " messages PubAcked in " << fixed(measured_s, 3) << " s ("
              << with_commas(pubacks) << " PubAcks with warmup)\n";
        else
            t << "  delivered   " << with_commas(counted) << " messages in " << fixed(measured_s, 3) << " s ("
              << with_commas(done_total) << " with warmup, each checked: complete, in order, intact, first delivery; "
              << with_commas(acks) << " cumulative acks)\n";
        t << "  throughput  " << rate_text(per_s) << " msgs/s\n";
        if (any)
            t << "  latency     " << (o.stored ? "publish -> PubAck: " : "publish -> delivery: ") << "p50 " << fixed(p50, 1)
              << " us, p99 " << fixed(p99, 1) << " us, p99.9 " << fixed(p999, 1) << " us, max " << fixed(lat_max, 1)
              << " us, mean " << fixed(lat_mean, 1) << " us\n";
        if (stream_known)
            t << "  stream      " << with_commas(stream_msgs_after) << " messages left in "
              << (o.stream_per_unit ? "the " + std::to_string(o.n) + " streams " + o.stream + "_<i>" : "the stream " + o.stream)
              << " at the end\n";
        t << "  errors      " << state.error_count.load();
        if (ok) t << "\n";
        else t << " (FAILED: " << (state.errors.empty() ? std::string("?") : state.errors.front()) << ")\n";
        t << state.error_kinds.text();
        std::cout << t.str();
    }
    std::cout.flush();

    // ---- cleanup ----
    for (auto& u : state.units) {
        if (u->sub) {
            (void)natsSubscription_Unsubscribe(u->sub); // deletes the consumer
            natsSubscription_Destroy(u->sub);
        }
        natsMsg_Destroy(u->last);
    }
    if (!o.keep_stream && !state.units.empty() && state.units[0]->pub_js)
        for (auto& u : state.units) {
            if (!u->stream.empty() && (o.stream_per_unit || u->index == 0))
                (void)js_DeleteStream(state.units[0]->pub_js, u->stream.c_str(), nullptr, nullptr);
        }
    for (auto& u : state.units) {
        jsCtx_Destroy(u->sub_js);
        jsCtx_Destroy(u->pub_js);
        natsConnection_Destroy(u->sub_nc);
        natsConnection_Destroy(u->pub_nc);
    }
    nats_CloseAndWait(2000);
    if (!ok) {
        for (const std::string& e : state.errors) std::cerr << "jetstream_bench: error: " << e << "\n";
        return 1;
    }
    return 0;
}
