/// @file
/// @brief `switchboard::detail::server_state`: what a server shares with its connections (they
/// keep it alive): the router and its mutex, the options, the protocol's config, the write chunk
/// pool, the acceptor and timers, the hooks, the counters, and the set of live connections with
/// the admission state. Internal to the engine.
#pragma once

#include "../../detail/output_queue.hpp"
#include "../../router.hpp"
#include "../server_options.hpp"
#include "admission.hpp"

#include "../backend.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::detail {

template <class Stream, class Protocol>
class connection;

/// @brief The server's shared state. Lock order: router mutex -> a connection's output mutex ->
/// `connections_mutex`; the last is only ever taken last or alone.
template <class Stream, class Protocol>
struct server_state {
    /// @brief The connection type of this server.
    using connection_type = connection<Stream, Protocol>;
    /// @brief The per-server stream context (TLS: `asio::ssl::context`), or void.
    using context_type = typename Stream::context_type;

    server_state(net::io_context& ctx, router& r, std::mutex* m, tcp_server_options o, context_type* c)
        : io(ctx), routes(r), router_mutex(m ? m : &own_mutex), options(std::move(o)),
          write_pool(options.write_pool_bytes), context(c), protocol(options),
          acceptor(net::make_strand(ctx)), retry_timer(acceptor.get_executor()),
          stop_timer(acceptor.get_executor()), sweep_timer(acceptor.get_executor()),
          backoff(options.accept_retry_min, options.accept_retry_max),
          limits(options.max_connections, options.max_connections_per_address) {}

    net::io_context& io;
    router& routes;
    std::mutex own_mutex;
    std::mutex* router_mutex;
    const tcp_server_options options;
    chunk_pool write_pool;                // write chunks of every connection's output queue
    context_type* context;                // TLS: the server's ssl::context
    typename Protocol::config protocol;   // guarded by the router mutex
    net::ip::tcp::acceptor acceptor;
    net::steady_timer retry_timer;
    net::steady_timer stop_timer;
    net::steady_timer sweep_timer;     // register and idle timeouts, write pool trimming
    std::chrono::steady_clock::time_point last_pool_trim{};
    accept_backoff backoff;               // acceptor strand only
    std::atomic<bool> stopped{false};
    std::function<void(const tcp_connection_info&)> on_connect;
    std::function<void(const tcp_connection_info&)> on_disconnect;
    std::function<void(const std::error_code&)> on_accept_error;

    std::atomic<std::uint64_t> accepted{0}, refused_full{0}, refused_per_address{0}, register_timeouts{0},
        handshake_timeouts{0}, idle_timeouts{0}, slow_consumers{0};

    std::mutex connections_mutex; // guards the two members below
    std::unordered_map<connection_type*, std::shared_ptr<connection_type>> connections;
    admission limits;

    /// @brief Live connections (a snapshot, so that they can be called without the mutex).
    std::vector<std::shared_ptr<connection_type>> snapshot() {
        std::lock_guard<std::mutex> lock(connections_mutex);
        std::vector<std::shared_ptr<connection_type>> out;
        out.reserve(connections.size());
        for (const auto& entry : connections) out.push_back(entry.second);
        return out;
    }

    /// @brief Open connections.
    std::size_t connection_count() {
        std::lock_guard<std::mutex> lock(connections_mutex);
        return connections.size();
    }

    /// @brief A connection is gone: forgets it and its address.
    /// @return true when it was the last one during a stop (the caller ends the stop timer).
    bool forget(connection_type* c, const net::ip::address& address) {
        std::lock_guard<std::mutex> lock(connections_mutex);
        if (connections.erase(c) != 0) limits.release(address);
        return stopped && connections.empty();
    }
};

} // namespace switchboard::detail
