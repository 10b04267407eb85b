// Unit-test helper: a cluster of two or three routers in one process, joined by an in-process
// directory (switchboard::directory) — a real directory for a single-process host, not a mock.
// Everything the directory does is queued and runs when the test calls pump(): claims are decided
// "synchronously later" (claim_completed() is never called from inside claim()), releases and
// room events published likewise, and remote sessions ("proxies") carry cluster-format bytes that
// are decoded on the home node and written in the real session's own format.
#pragma once

#include <switchboard/cluster_format.hpp>
#include <switchboard/directory.hpp>
#include <switchboard/router.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard_test {

class in_process_cluster {
public:
    // What one node's directory was told, for the tests to check.
    struct calls {
        std::size_t claims = 0;
        std::vector<std::string> released;      // "<user>@<last_seen>"
        std::vector<std::string> room_active;   // "<room>:on" / "<room>:off"
        std::vector<std::string> room_events;   // "<kind> <room> <user> <text>"
    };

    in_process_cluster(std::size_t nodes, switchboard::router_options options = {})
        : policy_(options.sessions), max_sessions_(options.max_sessions_per_user) {
        for (std::size_t i = 0; i < nodes; ++i) {
            nodes_.push_back(std::make_unique<node>());
            nodes_.back()->dir = std::make_unique<node_directory>(*this, i);
            switchboard::router_options o = options;
            o.directory = nodes_.back()->dir.get();
            nodes_.back()->r = std::make_unique<switchboard::router>(o);
        }
    }
    ~in_process_cluster() { queue_.clear(); }
    in_process_cluster(const in_process_cluster&) = delete;
    in_process_cluster& operator=(const in_process_cluster&) = delete;

    switchboard::router& at(std::size_t i) { return *nodes_[i]->r; }
    calls& told(std::size_t i) { return nodes_[i]->dir->log; }

    // Runs what the directory queued (and what that queues) until nothing is left.
    std::size_t pump() {
        std::size_t n = 0;
        while (!queue_.empty()) {
            std::function<void()> f = std::move(queue_.front());
            queue_.pop_front();
            f();
            ++n;
        }
        return n;
    }

    // While true, claims are answered cluster_unavailable and proxies refuse deliveries
    // (delivery::unavailable), as the Redis backplane does during an outage.
    bool down = false;

    // Cluster-format payloads proxies on node `at` were handed, decoded again ("<kind> <user> <text>").
    std::vector<std::string> proxy_bytes(std::size_t at_node) const { return nodes_[at_node]->proxy_log; }
    // Raw cluster-format payloads handed to proxies on node `at_node`.
    const std::vector<switchboard::payload>& proxy_payloads(std::size_t at_node) const {
        return nodes_[at_node]->proxy_raw;
    }
    // Proxies node `i` holds.
    std::size_t proxies(std::size_t i) const { return nodes_[i]->proxies.size(); }
    // Sessions holding `user` in the directory.
    std::size_t holders(const std::string& user) const {
        const auto it = users_.find(user);
        return it == users_.end() ? 0 : it->second.size();
    }

private:
    class node_directory final : public switchboard::directory {
    public:
        node_directory(in_process_cluster& c, std::size_t id) : c_(&c), id_(id) {}
        void claim(const switchboard::name& user, switchboard::session_id s, switchboard::session_policy,
                   std::uint64_t ticket) override {
            ++log.claims;
            c_->post([c = c_, id = id_, user, s, ticket] { c->decide(id, user, s, ticket); });
        }
        void released(const switchboard::name& user, switchboard::session_id s, std::int64_t last_seen) override {
            log.released.push_back(str(user) + "@" + std::to_string(last_seen));
            c_->post([c = c_, id = id_, user, s, last_seen] { c->release(id, user, s, last_seen); });
        }
        void room_active(const switchboard::name& room, bool active) override {
            log.room_active.push_back(str(room) + (active ? ":on" : ":off"));
            if (active) subscribed.insert(str(room));
            else subscribed.erase(str(room));
        }
        void room_event(const switchboard::name& room, const switchboard::event& e) override {
            log.room_events.push_back(describe(e));
            const switchboard::payload bytes = switchboard::cluster_format::instance().encode(e);
            c_->post([c = c_, id = id_, room, bytes] { c->publish_room(id, room, bytes); });
        }
        calls log;
        std::set<std::string> subscribed;

    private:
        in_process_cluster* c_;
        std::size_t id_;
    };

    // On node `at`: stands for session `target` of node `home`.
    class proxy_transport final : public switchboard::transport {
    public:
        proxy_transport(in_process_cluster& c, std::size_t at, std::size_t home, switchboard::session_id target)
            : c_(&c), at_(at), home_(home), target_(target) {}
        switchboard::delivery deliver(const switchboard::payload& bytes) noexcept override {
            if (c_->down) return switchboard::delivery::unavailable;
            node& n = *c_->nodes_[at_];
            n.proxy_raw.push_back(bytes);
            switchboard::event e;
            n.proxy_log.push_back(switchboard::decode_cluster_event(bytes.view(), e) ? describe(e) : "UNDECODABLE");
            c_->post([c = c_, home = home_, target = target_, bytes] { c->forward(home, target, bytes); });
            return switchboard::delivery::queued;
        }
        void close(switchboard::close_mode) noexcept override {
            c_->post([c = c_, at = at_, key = std::make_pair(home_, target_.value())] { c->drop_proxy(at, key, -1); });
        }

    private:
        in_process_cluster* c_;
        std::size_t at_, home_;
        switchboard::session_id target_;
    };

    using proxy_key = std::pair<std::size_t, std::uint64_t>; // home node, session id there
    struct proxy {
        std::unique_ptr<proxy_transport> t;
        switchboard::session_id id;
    };
    struct node {
        std::unique_ptr<node_directory> dir;
        std::unique_ptr<switchboard::router> r;
        std::map<proxy_key, proxy> proxies;
        std::vector<std::string> proxy_log;
        std::vector<switchboard::payload> proxy_raw;
    };
    struct entry {
        std::size_t node;
        switchboard::session_id s;
    };

    static std::string str(const switchboard::name& n) { return std::string(n.view()); }
    static std::string describe(const switchboard::event& e) {
        std::string out = std::to_string(static_cast<int>(e.kind));
        for (const std::string_view part : {e.room, e.user, e.text})
            if (!part.empty()) out += " " + std::string(part);
        return out;
    }

    void post(std::function<void()> f) { queue_.push_back(std::move(f)); }

    void decide(std::size_t at_node, const switchboard::name& user, switchboard::session_id s, std::uint64_t ticket) {
        switchboard::router& r = at(at_node);
        std::vector<entry>& holders = users_[str(user)];
        switchboard::status verdict = switchboard::status::ok;
        if (down) verdict = switchboard::status::cluster_unavailable;
        else if (!holders.empty() && policy_ == switchboard::session_policy::exclusive)
            verdict = switchboard::status::name_taken;
        else if (policy_ == switchboard::session_policy::multi && holders.size() >= max_sessions_)
            verdict = switchboard::status::too_many_sessions;
        if (verdict != switchboard::status::ok) {
            (void)r.claim_completed(ticket, verdict);
            return;
        }
        if (policy_ == switchboard::session_policy::replace) holders.clear(); // their nodes take over
        holders.push_back(entry{at_node, s});
        (void)r.claim_completed(ticket, switchboard::status::ok);
        for (std::size_t n = 0; n < nodes_.size(); ++n) {
            if (n == at_node) continue;
            proxy& p = nodes_[n]->proxies[proxy_key{at_node, s.value()}];
            p.t = std::make_unique<proxy_transport>(*this, n, at_node, s);
            p.id = at(n).open_remote_session(*p.t, switchboard::cluster_format::instance());
            (void)at(n).register_remote(p.id, user);
        }
    }

    void release(std::size_t at_node, const switchboard::name& user, switchboard::session_id s, std::int64_t last_seen) {
        const auto it = users_.find(str(user));
        if (it == users_.end()) return;
        std::vector<entry>& holders = it->second;
        const auto e = std::find_if(holders.begin(), holders.end(),
                                    [&](const entry& x) { return x.node == at_node && x.s == s; });
        if (e == holders.end()) return; // the name moved on already (a takeover)
        holders.erase(e);
        if (holders.empty()) users_.erase(it);
        for (std::size_t n = 0; n < nodes_.size(); ++n)
            if (n != at_node) drop_proxy(n, proxy_key{at_node, s.value()}, last_seen);
    }

    void drop_proxy(std::size_t at_node, const proxy_key& key, std::int64_t last_seen) {
        auto& proxies = nodes_[at_node]->proxies;
        const auto it = proxies.find(key);
        if (it == proxies.end()) return;
        if (last_seen >= 0) at(at_node).touch(it->second.id, last_seen);
        (void)at(at_node).close_session(it->second.id);
        proxies.erase(it); // after close_session(): the transport outlives it
    }

    void forward(std::size_t home, switchboard::session_id target, const switchboard::payload& bytes) {
        switchboard::event e;
        if (!switchboard::decode_cluster_event(bytes.view(), e)) return;
        switchboard::router& r = at(home);
        if (e.kind == switchboard::event_kind::direct_message && r.acks_enabled(target)) { // as the backplane
            (void)r.deliver_remote(target, e.user, e.text);
            return;
        }
        if (const switchboard::event_encoder* f = r.format_of(target)) (void)r.send(target, f->encode(e));
    }

    void publish_room(std::size_t origin, const switchboard::name& room, const switchboard::payload& bytes) {
        switchboard::event e;
        if (!switchboard::decode_cluster_event(bytes.view(), e)) return;
        for (std::size_t n = 0; n < nodes_.size(); ++n)
            if (n != origin && nodes_[n]->dir->subscribed.count(str(room)) != 0) (void)at(n).relay(room, e);
    }

    switchboard::session_policy policy_;
    std::size_t max_sessions_;
    std::vector<std::unique_ptr<node>> nodes_;
    std::deque<std::function<void()>> queue_;
    std::map<std::string, std::vector<entry>> users_;
};

} // namespace switchboard_test
