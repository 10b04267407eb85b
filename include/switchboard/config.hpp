/// @file
/// @brief Build-time configuration: the assertion macro for programming errors, and the
/// inlining hint of the hot path.
///
/// Programming errors (a null transport, a payload over 4 GiB) are checked with
/// `SWITCHBOARD_ASSERT`. Define it before including any switchboard header to route the check
/// into your own handler; the default uses `assert()` and so vanishes under `NDEBUG`.
/// Outcomes that the network or a user can cause are never asserted: they are `status` values.
#pragma once

#ifndef SWITCHBOARD_ASSERT
#include <cassert>
/// @brief Checks an invariant that only a bug in the calling code can break.
/// @param cond the condition that must hold.
/// @param msg  a string literal saying what was violated.
#define SWITCHBOARD_ASSERT(cond, msg) assert((cond) && (msg))
#endif


/// @brief Asks the compiler to inline a small function of the message hot path whatever its
/// heuristics say (GCC and clang; elsewhere plain `inline`). Used where a profile showed the
/// compiler keeping it out of line: `payload::build()`, the line encoder's `words()`.
#if defined(__GNUC__) || defined(__clang__)
#define SWITCHBOARD_HOT_INLINE inline __attribute__((always_inline))
#else
#define SWITCHBOARD_HOT_INLINE inline
#endif

/// @brief `SWITCHBOARD_HOT_INLINE` for a lambda, written after its parameter list (GCC and
/// clang; elsewhere nothing): the line encoder's fill lambda.
#if defined(__GNUC__) || defined(__clang__)
#define SWITCHBOARD_HOT_LAMBDA __attribute__((always_inline))
#else
#define SWITCHBOARD_HOT_LAMBDA
#endif

/// @brief Keeps a function out of line whatever the compiler's heuristics say (GCC and clang;
/// elsewhere nothing), so that the hot path it branches off stays short: the commands other than
/// `msg` in `command_session::apply()`.
#if defined(__GNUC__) || defined(__clang__)
#define SWITCHBOARD_NOINLINE __attribute__((noinline))
#else
#define SWITCHBOARD_NOINLINE
#endif

/// @brief `SWITCHBOARD_NOINLINE` for a path that is rare by design (an error answer, a refusal):
/// also optimised for size and laid out away from the hot code (GCC and clang; elsewhere
/// nothing).
#if defined(__GNUC__) || defined(__clang__)
#define SWITCHBOARD_COLD __attribute__((noinline, cold))
#else
#define SWITCHBOARD_COLD
#endif
