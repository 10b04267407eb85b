// Accept errors: out of file descriptors (EMFILE), the server must neither spin the CPU nor stop
// accepting. The server runs in a forked child with RLIMIT_NOFILE = 32; the parent opens 60
// clients, asks the child for its CPU time over one idle second (a bound, not a timing test),
// then closes the clients and checks that a new one is served.
#include "test_server.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace switchboard_test;

namespace {

// ---- child side: a server on one thread (no threads after fork), driven over a pipe --------------

long cpu_microseconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

void write_all(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            ::_exit(3);
        }
        done += static_cast<std::size_t>(n);
    }
}

// Commands (one byte): 's' -> "<accept errors> <connections>\n"; 'm' -> "<CPU us over 1 s>\n";
// 'q' -> stop the server and exit 0.
[[noreturn]] void child_main(int commands, int replies) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 32;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(4);
    try {
        switchboard::net::io_context io(1);
        switchboard::router router;
        switchboard::tcp_server_options options;
        options.accept_retry_min = std::chrono::milliseconds(5);
        options.accept_retry_max = std::chrono::milliseconds(50);
        switchboard::tcp_server server(io, router, options);
        std::size_t accept_errors = 0;
        server.on_accept_error([&](const std::error_code&) { ++accept_errors; });
        server.listen({switchboard::net::ip::make_address("127.0.0.1"), 0});
        write_all(replies, std::to_string(server.local_endpoint().port()) + "\n");

        switchboard::net::posix::stream_descriptor control(io, commands);
        switchboard::net::steady_timer window(io);
        char command = 0;
        long cpu_before = 0;
        std::function<void()> next_command = [&] {
            auto on_command = [&](const switchboard::net_error_code& ec, std::size_t) {
                if (ec || command == 'q') {
                    server.stop();
                    control.close();
                    return;
                }
                if (command == 's') {
                    write_all(replies, std::to_string(accept_errors) + " " +
                                           std::to_string(server.connection_count()) + "\n");
                    next_command();
                } else if (command == 'm') {
                    cpu_before = cpu_microseconds();
                    window.expires_after(std::chrono::seconds(1)); // the measured window
                    window.async_wait([&](const switchboard::net_error_code&) {
                        write_all(replies, std::to_string(cpu_microseconds() - cpu_before) + "\n");
                        next_command();
                    });
                } else {
                    ::_exit(5);
                }
            };
            switchboard::net::async_read(control, switchboard::net::buffer(&command, 1), on_command);
        };
        next_command();
        io.run();
        ::_exit(0);
    } catch (...) {
        ::_exit(2);
    }
}

// ---- parent side ------------------------------------------------------------------------------

class child_server {
public:
    child_server() {
        int to_child[2], from_child[2];
        REQUIRE(::pipe2(to_child, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(from_child, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(to_child[1]);
            ::close(from_child[0]);
            child_main(to_child[0], from_child[1]);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        commands_ = to_child[1];
        replies_ = from_child[0];
        port_ = static_cast<unsigned short>(std::stoi(read_reply()));
    }
    child_server(const child_server&) = delete;
    child_server& operator=(const child_server&) = delete;
    ~child_server() {
        if (pid_ > 0) { // a failed test: end the child we started
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        ::close(commands_);
        ::close(replies_);
    }

    [[nodiscard]] unsigned short port() const { return port_; }

    std::string ask(char command) {
        REQUIRE(::write(commands_, &command, 1) == 1);
        return read_reply();
    }

    // Sends 'q' and waits (bounded) for the child to exit; returns its exit status.
    int quit() {
        const char q = 'q';
        REQUIRE(::write(commands_, &q, 1) == 1);
        int status = 0;
        const bool exited =
            wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, deadline_in());
        if (!exited) FAIL("the child server did not exit after stop()");
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    std::string read_reply() {
        const auto deadline = deadline_in();
        for (;;) {
            const auto lf = buffer_.find('\n');
            if (lf != std::string::npos) {
                std::string line = buffer_.substr(0, lf);
                buffer_.erase(0, lf + 1);
                return line;
            }
            pollfd p{replies_, POLLIN, 0};
            if (::poll(&p, 1, ms_until(deadline)) <= 0) FAIL("no reply from the child server");
            char chunk[256];
            const ssize_t n = ::read(replies_, chunk, sizeof chunk);
            if (n <= 0) FAIL("the child server exited");
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    pid_t pid_ = -1;
    int commands_ = -1, replies_ = -1;
    unsigned short port_ = 0;
    std::string buffer_;
};

} // namespace

TEST_CASE("accept errors: out of descriptors the server backs off without spinning and recovers",
          "[integration][accept][emfile]") {
    child_server child;
    std::string status;
    // Warm-up while descriptors are free: one connection closed with EOF, one reset, then the
    // first of the 60 answers a /who. Besides checking the basics, this keeps UBSan quiet: its
    // vptr check probes memory through pipe(), which fails at EMFILE and then reports a false
    // "invalid vptr" for any polymorphic type it has not checked (and cached) before.
    for (int i = 0; i < 2; ++i) {
        client warm(child.port());
        expect_who(warm, "who");
        if (i == 0) warm.close();
        else warm.reset();
        REQUIRE(wait_until(
            [&] {
                status = child.ask('s');
                return status == "0 0";
            },
            deadline_in()));
    }
    std::vector<std::unique_ptr<client>> clients;
    clients.push_back(std::make_unique<client>(child.port()));
    expect_who(*clients.front(), "who");
    for (int i = 1; i < 60; ++i) clients.push_back(std::make_unique<client>(child.port()));

    // The child runs out of descriptors: accept errors are reported.
    REQUIRE(wait_until(
        [&] {
            status = child.ask('s');
            return std::stoul(status.substr(0, status.find(' '))) > 0;
        },
        deadline_in()));
    INFO("child status (accept errors, connections): " << status);

    // An already accepted connection is still served meanwhile.
    expect_who(*clients.front(), "who");

    // Over one idle second, a spinning accept loop would burn ~1 s of CPU; back-off burns ~none.
    const long cpu_us = std::stol(child.ask('m'));
    INFO("child CPU time over 1 s at EMFILE: " << cpu_us << " us");
    REQUIRE(cpu_us < 500000);

    // Descriptors come back: the server accepts again and serves a new client.
    for (auto& c : clients) c->close();
    clients.clear();
    client late(child.port());
    expect_who(late, "who");
    late.send("/register late\n");
    REQUIRE(late.read_line() == "ok register late");
    REQUIRE(wait_until(
        [&] {
            status = child.ask('s');
            return status.substr(status.find(' ') + 1) == "1"; // only `late` is connected
        },
        deadline_in()));
    late.close();
    REQUIRE(child.quit() == 0);
}
