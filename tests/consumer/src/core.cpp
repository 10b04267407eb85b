// Consumer smoke test for the core: built by tests/consumer/{find_package,add_subdirectory,
// meson_subproject} against switchboard::switchboard / dependency('switchboard').
// Includes only the umbrella header, as a user would.
#include <switchboard/switchboard.hpp>

#include <cstdio>
#include <cstring>

int main()
{
    char version[32];
    std::snprintf(version, sizeof version, "%d.%d.%d", SWITCHBOARD_VERSION_MAJOR,
                  SWITCHBOARD_VERSION_MINOR, SWITCHBOARD_VERSION_PATCH);
    std::printf("switchboard core consumer: version %s\n", version);
#ifdef SWITCHBOARD_CONSUMER_EXPECTED_VERSION
    // The build system's idea of the version (package / dependency version) must match the header.
    if (std::strcmp(version, SWITCHBOARD_CONSUMER_EXPECTED_VERSION) != 0) {
        std::fprintf(stderr, "version mismatch: header says %s, build system says %s\n", version,
                     SWITCHBOARD_CONSUMER_EXPECTED_VERSION);
        return 1;
    }
#endif
    return 0;
}
