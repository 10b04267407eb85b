/// @file
/// @brief Build-time configuration: the assertion macro for programming errors.
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

