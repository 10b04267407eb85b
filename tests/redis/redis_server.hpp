// A real redis-server for tests: started from PATH (or SWITCHBOARD_REDIS_SERVER, the path CMake
// found, or the REDIS_SERVER environment variable) on a free loopback port, in a temporary
// directory of its own, `--save "" --appendonly no` unless asked otherwise. The constructor returns
// once PING is answered; the destructor stops it and removes the directory. kill9() / sigstop() /
// sigcont() / restart() (same port, same directory) simulate the failures the client must survive.
// The server gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG): a crashed test
// leaves no redis-server behind. Its stdin/stdout/stderr are /dev/null (log: dir()/redis.log).
//
// Used by switchboard_redis_tests and by the cluster tests (several tcp_chat processes on one
// Redis). Header-only, needs hiredis (its blocking API, for PING and command()) and POSIX.
#pragma once

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::test {

/// Options of redis_server.
struct redis_server_options {
    /// `--appendonly yes` (AOF, `appendfsync everysec` unless extra_args says otherwise): data
    /// survives kill9() + restart(). Default: no persistence at all (`--save ""`).
    bool appendonly = false;
    /// More `--name value` arguments, passed as given (e.g. {"--maxmemory", "10mb"}).
    std::vector<std::string> extra_args;
    /// How long start() / restart() wait for PING.
    std::chrono::milliseconds start_timeout{10000};
};

/// A redis-server child process for one test (see the top of this file).
class redis_server {
public:
    explicit redis_server(redis_server_options options = {}) : options_(std::move(options)) {
        char pattern[] = "/tmp/switchboard-redis-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("redis_server: mkdtemp failed");
        dir_ = pattern;
        // A free port can be taken between the probe and redis' bind: try a few.
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            if (launch()) return;
        }
        throw std::runtime_error("redis_server: redis-server did not start (see " + log_path() + ")");
    }

    ~redis_server() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    /// The loopback address it listens on.
    [[nodiscard]] std::string host() const { return "127.0.0.1"; }
    /// Its port (the same after restart()).
    [[nodiscard]] std::uint16_t port() const { return port_; }
    /// Its working directory (AOF files, redis.log).
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
    /// Its log file.
    [[nodiscard]] std::string log_path() const { return (dir_ / "redis.log").string(); }
    /// The process id, or -1 when not running.
    [[nodiscard]] pid_t pid() const { return pid_; }
    /// Whether the process runs (possibly stopped by sigstop()).
    [[nodiscard]] bool running() const { return pid_ > 0; }

    /// SIGKILL: no shutdown, connections reset by the kernel.
    void kill9() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        reap();
    }

    /// SIGSTOP: the process freezes; connections stay open, nothing is answered.
    void sigstop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGSTOP);
        int status = 0;
        ::waitpid(pid_, &status, WUNTRACED); // returns once it is stopped
        stopped_ = true;
    }

    /// SIGCONT after sigstop().
    void sigcont() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGCONT);
        stopped_ = false;
    }

    /// Starts it again on the same port and directory (after kill9() or stop(); stops it first if
    /// it still runs). Throws when it does not answer PING in time.
    void restart() {
        stop();
        const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
        // The port may still be held briefly by the dead process' sockets: retry until PING.
        while (!launch()) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw std::runtime_error("redis_server: restart on port " + std::to_string(port_) +
                                         " failed (see " + log_path() + ")");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    /// SIGTERM (SIGCONT first if stopped), SIGKILL if it has not exited within 5 s. No effect when
    /// not running.
    void stop() {
        if (pid_ <= 0) return;
        if (stopped_) sigcont();
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        kill9();
    }

    /// Runs one command on a fresh blocking connection (hiredis' synchronous API) and returns
    /// the reply as text: a status, bulk string or error as is ("ERR ..." for an error), an
    /// integer in decimal, nil as "(nil)", an array as its elements joined by '\n'. Throws when
    /// Redis cannot be reached within 2 s. For test set-up and checks (SCRIPT FLUSH, CLIENT KILL).
    std::string command(const std::vector<std::string>& argv) const {
        timeval tv{2, 0};
        redisContext* c = redisConnectWithTimeout(host().c_str(), port_, tv);
        if (c == nullptr || c->err != 0) {
            if (c != nullptr) redisFree(c);
            throw std::runtime_error("redis_server::command: cannot connect to port " + std::to_string(port_));
        }
        redisSetTimeout(c, tv);
        std::vector<const char*> args;
        std::vector<std::size_t> lens;
        for (const auto& a : argv) {
            args.push_back(a.data());
            lens.push_back(a.size());
        }
        auto* r = static_cast<redisReply*>(
            redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
        if (r == nullptr) {
            redisFree(c);
            throw std::runtime_error("redis_server::command: no reply");
        }
        std::string out = to_text(r);
        freeReplyObject(r);
        redisFree(c);
        return out;
    }

    /// Whether PING is answered now (one attempt, 500 ms).
    [[nodiscard]] bool ping() const {
        timeval tv{0, 500000};
        redisContext* c = redisConnectWithTimeout(host().c_str(), port_, tv);
        bool ok = false;
        if (c != nullptr && c->err == 0) {
            redisSetTimeout(c, tv);
            auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
            ok = r != nullptr && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
            if (r != nullptr) freeReplyObject(r);
        }
        if (c != nullptr) redisFree(c);
        return ok;
    }

    /// The redis-server executable used: $REDIS_SERVER, else the path CMake found
    /// (SWITCHBOARD_REDIS_SERVER), else "redis-server" from PATH.
    static std::string executable() {
        if (const char* e = std::getenv("REDIS_SERVER"); e != nullptr && *e != '\0') return e;
#if defined(SWITCHBOARD_REDIS_SERVER)
        return SWITCHBOARD_REDIS_SERVER;
#else
        return "redis-server";
#endif
    }

private:
    static std::string to_text(const redisReply* r) {
        switch (r->type) {
        case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
        case REDIS_REPLY_NIL: return "(nil)";
        case REDIS_REPLY_ARRAY: {
            std::string out;
            for (std::size_t i = 0; i < r->elements; ++i) {
                if (i != 0) out += '\n';
                out += to_text(r->element[i]);
            }
            return out;
        }
        default: return std::string(r->str, r->len);
        }
    }

    // The executable's path: as given when it has a '/', else the first match on PATH.
    static std::string resolve(const std::string& name) {
        if (name.find('/') != std::string::npos) return name;
        const char* env = std::getenv("PATH");
        std::istringstream dirs(env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin");
        for (std::string dir; std::getline(dirs, dir, ':');) {
            const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        }
        throw std::runtime_error("redis_server: " + name + " not found on PATH (is redis-server installed?)");
    }

    static std::uint16_t free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("redis_server: no free port");
        }
        ::close(fd);
        return ntohs(a.sin_port);
    }

    // Spawns redis-server and waits for PING; false (process reaped) when it exits or does not
    // answer in time.
    bool launch() {
        std::vector<std::string> args{executable(),
                                      "--port", std::to_string(port_),
                                      "--bind", "127.0.0.1",
                                      "--dir", dir_.string(),
                                      "--logfile", log_path(),
                                      "--daemonize", "no",
                                      "--save", "",
                                      "--appendonly", options_.appendonly ? "yes" : "no"};
        args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
        const std::string path = resolve(args[0]);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("redis_server: fork failed");
        if (pid == 0) {
            // The child: async-signal-safe calls only. Killed with the test process (even when
            // it crashes), and off the test's stdout / stderr (its log goes to --logfile): a
            // left-over redis-server must not hold the pipe of whoever reads the test's output.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(1);
            const int null = ::open("/dev/null", O_RDWR);
            if (null >= 0) {
                ::dup2(null, 0);
                ::dup2(null, 1);
                ::dup2(null, 2);
            }
            ::execv(path.c_str(), argv.data());
            ::_exit(127);
        }
        pid_ = pid;
        stopped_ = false;
        const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) { // exited: port taken, bad option
                pid_ = -1;
                return false;
            }
            if (ping()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill9();
        return false;
    }

    void reap() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        stopped_ = false;
    }

    redis_server_options options_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    bool stopped_ = false;
};

} // namespace switchboard::test
