/// @file
/// @brief The library version: the one place it is written (CMake and meson read it from here).
#pragma once

/// @brief Major version: bumped on incompatible API or wire-protocol changes.
#define SWITCHBOARD_VERSION_MAJOR 0
/// @brief Minor version: bumped on compatible additions.
#define SWITCHBOARD_VERSION_MINOR 5
/// @brief Patch version: bumped on fixes only.
#define SWITCHBOARD_VERSION_PATCH 0

/// @brief The version as one integer, `major * 10000 + minor * 100 + patch`, for `#if` checks.
#define SWITCHBOARD_VERSION \
    (SWITCHBOARD_VERSION_MAJOR * 10000 + SWITCHBOARD_VERSION_MINOR * 100 + SWITCHBOARD_VERSION_PATCH)
