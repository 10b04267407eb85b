/// @file
/// @brief The Asio backend of the connection engine: standalone Asio (the default) or Boost.Asio
/// (when `SWITCHBOARD_USE_BOOST_ASIO` is defined). Every header under `switchboard/asio/`
/// includes this one and names Asio only as `switchboard::net` (a namespace alias) and its error
/// code only as `switchboard::net_error_code`, so the choice is a compile-time alias: no wrapper,
/// no runtime indirection.
///
/// | | standalone Asio (default) | Boost.Asio (`SWITCHBOARD_USE_BOOST_ASIO`) |
/// |---|---|---|
/// | `switchboard::net` | `asio` | `boost::asio` |
/// | `switchboard::net_error_code` | `std::error_code` | `boost::system::error_code` |
/// | the application's io_context | `asio::io_context` | `boost::asio::io_context` |
/// | TLS | `asio::ssl` | `boost::asio::ssl` |
/// | headers (Debian) | `libasio-dev` (1.22) | `libboost-dev` (1.74; Boost.System is header-only since 1.69) |
///
/// Select Boost.Asio by defining `SWITCHBOARD_USE_BOOST_ASIO` (any value) before the first
/// switchboard header, in every translation unit of the program: with CMake, link
/// `switchboard::boost_asio` (or `switchboard::boost_tls`) instead of `switchboard::asio`
/// (`switchboard::tls`); with meson, `dependency('switchboard-boost-asio')`
/// (`'switchboard-boost-tls'`); with pkg-config, `switchboard-boost-asio` (`-boost-tls`). Mixing
/// both choices in one program breaks the one-definition rule (`plain_stream` and the engine's
/// types differ). The public vocabulary does not change: the hooks' and `listen()`'s error codes
/// stay `std::error_code` (Boost's converts to it), endpoints and contexts are `net::` types.
///
/// Macros: switchboard defines no Asio macro in either mode. Standalone Asio defines
/// `ASIO_STANDALONE` itself when it is compiled as C++11 or later without `ASIO_ENABLE_BOOST`
/// (asio/detail/config.hpp), so nothing needs to define it; Boost.Asio reads only `BOOST_ASIO_*`
/// macros. `<cstddef>` is included before any Asio header on purpose: Asio 1.22 chooses between
/// `std::aligned_alloc`/`std::free` and `operator new`/`delete` for its handler memory
/// (asio::aligned_new/aligned_delete) from libstdc++'s `_GLIBCXX_HAVE_ALIGNED_ALLOC`, which only
/// exists once a standard header was included (chriskohlhoff/asio#1082). With a standard header
/// first, every translation unit that reaches Asio through switchboard makes the choice that any
/// translation unit with a standard header before Asio makes (`std::aligned_alloc`), so
/// `ASIO_DISABLE_STD_ALIGNED_ALLOC` is not needed (docs/design.md, "Asio backends and macros").
#pragma once

#include <cstddef> // first: defines _GLIBCXX_HAVE_ALIGNED_ALLOC before Asio's config (see above)
#include <system_error>

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>
#else
#include <asio/buffer.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#endif

namespace switchboard {

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
/// @brief The Asio the connection engine runs on: `boost::asio` here (`SWITCHBOARD_USE_BOOST_ASIO`).
namespace net = ::boost::asio;
/// @brief The error code of Asio's completion handlers: `boost::system::error_code` here
/// (it converts to `std::error_code`, which the public hooks report).
using net_error_code = ::boost::system::error_code;
/// @brief True when the engine runs on Boost.Asio.
inline constexpr bool uses_boost_asio = true;
#else
/// @brief The Asio the connection engine runs on: standalone `asio` (the default).
namespace net = ::asio;
/// @brief The error code of Asio's completion handlers: `std::error_code` with standalone Asio.
using net_error_code = std::error_code;
/// @brief True when the engine runs on Boost.Asio (`SWITCHBOARD_USE_BOOST_ASIO`).
inline constexpr bool uses_boost_asio = false;
#endif

} // namespace switchboard
