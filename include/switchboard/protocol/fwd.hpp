/// @file
/// @brief Forward declarations of the line protocol's types (the core's are in `../fwd.hpp`).
#pragma once

/// @brief The line protocol v1 (docs/protocol.md), sans-I/O: its codec (line.hpp) and its
/// per-connection server logic (line_session.hpp).
namespace switchboard::protocol {

class line_framer;
struct line_command;
class line_event_encoder;
struct line_session_options;
class line_session;

} // namespace switchboard::protocol
