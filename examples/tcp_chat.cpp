// tcp_chat: a line-based chat server on switchboard's TCP adapter. Talk to it with netcat:
//   ./tcp_chat --port 7777          then, in two other terminals:   nc 127.0.0.1 7777
// Protocol: docs/protocol.md. Logs one line per connect/disconnect to stderr (never message text).
#include <switchboard/asio/tcp_server.hpp>
#include <switchboard/switchboard.hpp>

#include <asio.hpp>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr const char* usage_text = R"(usage: tcp_chat [options]

A line-based chat server (switchboard line protocol v1). Connect with: nc HOST PORT

options:
  --host ADDRESS      address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)
  --port PORT         TCP port, 0 for any free port (default 7777)
  --threads N         threads running the io_context, 1-256 (default 1)
  --max-line BYTES    longest accepted line, terminator excluded (default 4096)
  --max-output BYTES  queued output per connection before a non-reading client is
                      disconnected (default 1048576)
  --help              show this help and exit

Stops gracefully on SIGINT (Ctrl-C) or SIGTERM and exits 0.
)";

struct settings {
    std::string host = "127.0.0.1";
    unsigned short port = 7777;
    unsigned threads = 1;
    std::size_t max_line = switchboard::protocol::default_max_line;
    std::size_t max_output = std::size_t{1} << 20;
};

template <class T>
bool parse_number(std::string_view text, T& out, T min, T max) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) return false;
    out = value;
    return true;
}

// Returns 0 to run, 1 for --help, 2 for a usage error (message printed).
int parse_args(int argc, char** argv, settings& s) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") return 1;
        if (i + 1 >= argc) {
            std::cerr << "tcp_chat: " << arg << (arg.substr(0, 2) == "--" ? " needs a value" : ": unknown option")
                      << " (see --help)\n";
            return 2;
        }
        const std::string_view value = argv[++i];
        bool ok = true;
        if (arg == "--host") s.host = std::string(value);
        else if (arg == "--port") ok = parse_number<unsigned short>(value, s.port, 0, 65535);
        else if (arg == "--threads") ok = parse_number<unsigned>(value, s.threads, 1, 256);
        else if (arg == "--max-line") ok = parse_number<std::size_t>(value, s.max_line, 1, std::size_t{1} << 24);
        else if (arg == "--max-output")
            ok = parse_number<std::size_t>(value, s.max_output, 1, std::size_t{1} << 34);
        else {
            std::cerr << "tcp_chat: unknown option " << arg << " (see --help)\n";
            return 2;
        }
        if (!ok) {
            std::cerr << "tcp_chat: bad value for " << arg << ": " << value << " (see --help)\n";
            return 2;
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    if (const int r = parse_args(argc, argv, s); r != 0) {
        if (r == 1) std::cout << usage_text;
        return r == 1 ? 0 : 2;
    }

    std::error_code ec;
    const auto address = asio::ip::make_address(s.host, ec);
    if (ec) {
        std::cerr << "tcp_chat: bad --host " << s.host << ": " << ec.message() << "\n";
        return 2;
    }

    asio::io_context io(static_cast<int>(s.threads));
    switchboard::router router;
    switchboard::tcp_server_options options;
    options.max_line = s.max_line;
    options.max_output_bytes = s.max_output;
    options.greeting = "welcome to switchboard chat. register with: /register <name>\n"
                       "then: /msg <user> <text>, /join <room>, /say <room> <text>, /who, /quit";
    switchboard::tcp_server server(io, router, options);

    std::mutex log_mutex; // hooks may run on several threads
    server.on_connect([&](const switchboard::tcp_connection_info& c) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << "connect " << c.peer << " session " << c.session.index() << "\n";
    });
    server.on_disconnect([&](const switchboard::tcp_connection_info& c) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << "disconnect " << c.peer << " session " << c.session.index() << " user "
                  << (c.user.empty() ? std::string_view("-") : c.user) << " reason " << to_string(c.reason);
        if (c.error) std::cerr << " (" << c.error.message() << ")";
        std::cerr << "\n";
    });
    server.on_accept_error([&](const std::error_code& e) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::cerr << "accept error: " << e.message() << " (retrying)\n";
    });

    server.listen({address, s.port}, ec);
    if (ec) {
        std::cerr << "tcp_chat: cannot listen on " << s.host << ":" << s.port << ": " << ec.message() << "\n";
        return 1;
    }
    std::cerr << "tcp_chat: listening on " << server.local_endpoint() << " with " << s.threads
              << " thread(s); connect with: nc " << server.local_endpoint().address() << " "
              << server.local_endpoint().port() << "\n";

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const std::error_code& e, int signo) {
        if (e) return;
        std::cerr << "tcp_chat: signal " << signo << ", stopping\n";
        server.stop();
    });

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < s.threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
    std::cerr << "tcp_chat: stopped\n";
    return 0;
}
