/// @file
/// @brief Forward declarations of the public types, for headers that only name them.
#pragma once

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


} // namespace switchboard
