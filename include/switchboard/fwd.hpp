/// @file
/// @brief Forward declarations of the public types, for headers that only name them.
#pragma once

/// @brief The switchboard core: the router, sessions, names, payloads, transports and wire
/// formats as interfaces; no I/O (docs/design.md, "The sans-I/O core"). The TCP and TLS adapters
/// (asio/) live here too; internals are in `switchboard::detail`, which is not part of the API.
namespace switchboard {

class payload;
class name;
class transport;
class event_encoder;
struct event;
class session_id;
struct route_result;
struct router_options;
class router;
class in_memory_transport;
class directory;
class cluster_format;


} // namespace switchboard
