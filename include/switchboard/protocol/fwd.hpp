/// @file
/// @brief Forward declarations of the protocol layer's types (the core's are in `../fwd.hpp`).
#pragma once

/// @brief The wire protocols, sans-I/O: the format-neutral command semantics (command.hpp,
/// reply.hpp, command_session.hpp), the line protocol v1 (docs/protocol.md): its codec (line.hpp)
/// and its per-connection server logic (line_session.hpp).
namespace switchboard::protocol {

struct command;
using line_command = command;
struct reply;
class reply_encoder;
struct command_session_options;
class command_session;
class line_framer;
class line_reply_encoder;
class line_event_encoder;
struct line_session_options;
class line_session;

} // namespace switchboard::protocol
