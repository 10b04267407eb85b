// The WebSocket listener under load from several threads (it runs under TSan in CI, with the rest
// of the integration tests): JSON and line WebSocket clients exchange direct and room messages
// through a server whose io_context runs on 3 threads, then close with close frames. Every message
// arrives once, in order per sender; every client gets its close echoed.
// The frame rules and HTTP answers are tested with an independent client in tests/websocket/.
#include "test_server.hpp"

#include "../unit/websocket_client.hpp"

#include <switchboard/websocket/websocket_protocol.hpp>

#include <thread>

using namespace switchboard_test;

namespace {

using ws_server_type = switchboard::basic_tcp_server<switchboard::plain_stream, switchboard::websocket::websocket_protocol>;
using switchboard::protocol::websocket_decoder;
using switchboard::protocol::websocket_message;
using switchboard::protocol::websocket_opcode;

// A blocking WebSocket client over the test client: the upgrade, masked frames out, server frames
// decoded with a client-role decoder.
class ws_client {
public:
    ws_client(unsigned short port, std::string_view protocol) : socket_(port), decoder_(client_options()) {
        socket_.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n\r\n");
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) {
            const std::string got = socket_.take_some();
            REQUIRE(!got.empty());
            head += got;
        }
        const std::size_t end = head.find("\r\n\r\n") + 4;
        REQUIRE(head.rfind("HTTP/1.1 101 ", 0) == 0);
        rest_ = head.substr(end);
    }

    // Sends one text frame; the error, or "" (no Catch2 assertion: called from worker threads).
    std::string send_text(std::string body) {
        return socket_.try_send(websocket_test::client_frame(websocket_test::op_text, std::move(body)).str());
    }
    void send_close() { socket_.send(websocket_test::client_frame(websocket_test::op_close, websocket_test::close_body(1000)).str()); }

    // The next message: "text:..." or "close:<code>"; "" when the connection ended first, "bad:..."
    // when the server broke a frame rule (no Catch2 assertion: called from worker threads).
    std::string next() {
        for (;;) {
            if (!queue_.empty()) {
                std::string m = std::move(queue_.front());
                queue_.erase(queue_.begin());
                return m;
            }
            if (rest_.empty()) rest_ = socket_.take_some(deadline_in(std::chrono::milliseconds(20000)));
            if (rest_.empty()) return {};
            const auto r = decoder_.feed(rest_, [this](const websocket_message& m) {
                if (m.opcode == websocket_opcode::text) queue_.push_back("text:" + std::string(m.data));
                else if (m.opcode == websocket_opcode::close)
                    queue_.push_back("close:" + std::to_string(static_cast<unsigned>(m.code)));
            });
            rest_.clear();
            if (r.failed()) return "bad:" + std::string(r.reason());
        }
    }

private:
    static switchboard::protocol::websocket_decoder_options client_options() {
        switchboard::protocol::websocket_decoder_options o;
        o.role = switchboard::protocol::websocket_role::client;
        o.max_message = 1 << 16;
        return o;
    }
    client socket_;
    websocket_decoder decoder_;
    std::string rest_;
    std::vector<std::string> queue_;
};

} // namespace

TEST_CASE("websocket: JSON and line clients on a 3-thread server, direct and room messages, closes echoed",
          "[integration][websocket]") {
    basic_test_server<ws_server_type> ws(3);
    constexpr int clients = 6, messages = 200;
    std::vector<std::unique_ptr<ws_client>> c;
    for (int i = 0; i < clients; ++i) {
        const bool json = i % 2 == 0;
        c.push_back(std::make_unique<ws_client>(ws.port(), json ? "switchboard.json" : "switchboard.line"));
        const std::string user = "u" + std::to_string(i);
        if (json) {
            REQUIRE(c[i]->send_text(R"({"type":"register","user":")" + user + R"("})").empty());
            REQUIRE(c[i]->send_text(R"({"type":"join","room":"lobby"})").empty());
        } else {
            REQUIRE(c[i]->send_text("/register " + user + "\n/join lobby").empty());
        }
        const std::string registered = json ? R"(text:{"type":"ok","command":"register","user":")" + user + "\"}"
                                            : "text:ok register " + user;
        std::string m;
        while ((m = c[i]->next()) != registered) REQUIRE(!m.empty()); // greeting first
        const std::string joined = json ? R"(text:{"type":"ok","command":"join","room":"lobby"})" : "text:ok join lobby";
        while ((m = c[i]->next()) != joined) REQUIRE(!m.empty());
    }
    // Each client sends `messages` direct messages to the next one and one room message, from its
    // own thread; each checks what it receives.
    std::vector<std::thread> senders;
    std::vector<int> received(clients, 0), room(clients, 0);
    std::vector<std::string> failures(clients), send_failures(clients);
    for (int i = 0; i < clients; ++i)
        senders.emplace_back([&, i] {
            const int to = (i + 1) % clients;
            const bool json = i % 2 == 0;
            std::string error;
            for (int k = 0; k < messages && error.empty(); ++k) {
                const std::string text = "m" + std::to_string(k);
                error = c[i]->send_text(json ? R"({"type":"msg","to":"u)" + std::to_string(to) + R"(","text":")" + text + "\"}"
                                             : "/msg u" + std::to_string(to) + " " + text);
            }
            if (error.empty()) error = c[i]->send_text(json ? R"({"type":"say","room":"lobby","text":"hello"})" : "/say lobby hello");
            if (!error.empty()) send_failures[i] = error;
        });
    for (auto& t : senders) t.join();
    for (int i = 0; i < clients; ++i) CHECK(send_failures[i].empty());
    std::vector<std::thread> readers;
    for (int i = 0; i < clients; ++i)
        readers.emplace_back([&, i] {
            const int from = (i + clients - 1) % clients;
            const bool json = i % 2 == 0;
            while (received[i] < messages || room[i] < clients - 1) {
                const std::string m = c[i]->next();
                if (m.empty()) {
                    failures[i] = "connection ended after " + std::to_string(received[i]) + " messages";
                    return;
                }
                const std::string expected =
                    json ? R"(text:{"type":"msg","from":"u)" + std::to_string(from) + R"(","text":"m)" + std::to_string(received[i]) + "\"}"
                         : "text:msg u" + std::to_string(from) + " m" + std::to_string(received[i]);
                const bool is_join = m.rfind(R"(text:{"type":"join")", 0) == 0 || m.rfind("text:join ", 0) == 0;
                if (is_join) continue; // members who joined after this client
                if (m.rfind(R"(text:{"type":"room")", 0) == 0 || m.rfind("text:room ", 0) == 0) ++room[i];
                else if (m == expected) ++received[i];
                else if (failures[i].empty()) failures[i] = "unexpected: " + m + " (expected " + expected + ")";
            }
        });
    for (auto& t : readers) t.join();
    for (int i = 0; i < clients; ++i) {
        INFO("client " << i);
        CHECK(failures[i].empty());
        CHECK(received[i] == messages);
        CHECK(room[i] == clients - 1);
    }
    for (auto& w : c) {
        w->send_close();
        std::string m;
        while ((m = w->next()).rfind("close:", 0) != 0) REQUIRE(!m.empty());
        CHECK(m == "close:1000");
    }
    CHECK(ws.wait_disconnects(clients) == clients);
}
