/// @file
/// @brief Umbrella header of the switchboard core: router, names, payloads, transports, the text
/// contract and the in-memory transport. It includes no wire format and no I/O: the line
/// protocol is `<switchboard/protocol/line.hpp>` (codec) and `<switchboard/protocol/line_session.hpp>`
/// (per-connection logic); the TCP adapter is `<switchboard/asio/tcp_server.hpp>`.
#pragma once

#include "cluster_format.hpp"
#include "config.hpp"
#include "directory.hpp"
#include "event.hpp"
#include "fwd.hpp"
#include "in_memory_transport.hpp"
#include "names.hpp"
#include "payload.hpp"
#include "rate_limiter.hpp"
#include "router.hpp"
#include "session_id.hpp"
#include "status.hpp"
#include "structured_format.hpp"
#include "text.hpp"
#include "transport.hpp"
#include "version.hpp"
