// Consumer smoke test for the SQLite store: built against switchboard::sqlite /
// dependency('switchboard-sqlite') / `pkg-config switchboard-sqlite`. Proves the include path,
// SQLite's header and library and threads are provided: it opens a store in a temporary
// directory, commits one message on the writer thread and reads the completion.
#include <switchboard/sqlite/sqlite_inbox.hpp>

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main()
{
    std::string dir = std::filesystem::temp_directory_path().string() + "/switchboard-consumer.XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return 1;
    int rc = 1;
    {
        switchboard::sqlite_inbox_options options;
        options.path = dir + "/chat.db";
        auto opened = switchboard::sqlite_inbox::open(options);
        if (!opened) {
            std::fprintf(stderr, "%s\n", opened.error.c_str());
        } else {
            const auto bob = *switchboard::name::parse("bob");
            opened.store->remember(bob);
            auto durable = switchboard::status::store_failed;
            (void)opened.store->append(bob, "alice", "hi", 0, [&](switchboard::status s) { durable = s; });
            opened.store->flush();
            opened.store->run_completions();
            rc = durable == switchboard::status::ok ? 0 : 1;
            std::printf("switchboard sqlite consumer: %s (SQLite %s)\n", rc == 0 ? "ok" : "failed", sqlite3_libversion());
        }
    }
    std::filesystem::remove_all(dir);
    return rc;
}
