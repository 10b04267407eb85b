/// @file
/// @brief Umbrella header of the switchboard core: router, names, payloads, transports, the line
/// protocol codec and session, and the in-memory transport. Never includes Asio; the TCP adapter
/// is `<switchboard/asio/tcp_server.hpp>`.
#pragma once

#include "config.hpp"
#include "event.hpp"
#include "fwd.hpp"
#include "in_memory_transport.hpp"
#include "names.hpp"
#include "payload.hpp"
#include "protocol/line.hpp"
#include "protocol/line_session.hpp"
#include "rate_limiter.hpp"
#include "router.hpp"
#include "session_id.hpp"
#include "status.hpp"
#include "transport.hpp"
#include "version.hpp"
