// Writing a wire format: an event_encoder that refuses what its framing cannot carry.
// A tab-separated format (kind, room, user, text; one record per line) cannot carry a TAB inside
// a text, which the text contract allows (text.hpp). It refuses such an event with an empty
// payload; the router then delivers the message to nobody, of any format, and answers
// status::invalid_text (docs/security.md, "The API path").
#include <switchboard/protocol/line.hpp>
#include <switchboard/switchboard.hpp>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace sb = switchboard;

class tsv_format final : public sb::event_encoder {
public:
    sb::payload encode(const sb::event& e) const override {
        // Exactly one record or nothing: check what the framing needs, even for events the router
        // has checked already, so that a direct call cannot forge a second record either.
        const bool has_text = e.kind == sb::event_kind::direct_message || e.kind == sb::event_kind::room_message;
        if (has_text && (!sb::is_message_text(e.text) || e.text.find('\t') != std::string_view::npos)) return {};
        if (!sb::is_valid_name(e.user) || (!e.room.empty() && !sb::is_valid_name(e.room))) return {};
        static constexpr std::string_view kinds[] = {"msg", "room", "join", "leave"};
        const std::string_view fields[] = {kinds[static_cast<std::size_t>(e.kind)], e.room, e.user, e.text};
        std::size_t size = 0;
        for (const std::string_view f : fields) size += f.size() + 1; // a TAB after each, LF at the end
        return sb::payload::build(size, [&](char* out) {
            for (const std::string_view f : fields) {
                if (!f.empty()) std::memcpy(out, f.data(), f.size());
                out += f.size();
                *out++ = '\t';
            }
            out[-1] = '\n';
        });
    }

    // One object per format: the router tells formats apart by address.
    static const tsv_format& instance() noexcept {
        static const tsv_format format;
        return format;
    }
};

int main() {
    sb::router router;
    sb::in_memory_transport ann_out, ben_out, cat_out;
    const sb::session_id ann = router.open_session(ann_out, tsv_format::instance());
    const sb::session_id ben = router.open_session(ben_out, tsv_format::instance());
    const sb::session_id cat = router.open_session(cat_out, sb::protocol::line_event_encoder::instance());
    for (const auto& [id, user] : {std::pair{ann, "ann"}, std::pair{ben, "ben"}, std::pair{cat, "cat"}})
        if (router.register_name(id, user) != sb::status::ok || router.join(id, "lobby") != sb::status::ok) return 1;
    (void)ann_out.take_bytes(); // the join events
    (void)ben_out.take_bytes();

    const sb::route_result sent = router.publish(ann, "lobby", "gg");
    const sb::route_result refused = router.publish(ann, "lobby", "name\tscore"); // valid text, not TSV
    const std::string ben_got = ben_out.take_bytes(), cat_got = cat_out.take_bytes();

    std::printf("gg: %s, delivered %u\n", std::string(to_string(sent.code)).c_str(), sent.delivered);
    std::printf("name<TAB>score: %s, delivered %u\n", std::string(to_string(refused.code)).c_str(),
                refused.delivered);
    std::printf("ben (tsv) got %zu bytes, cat (line) got: %s", ben_got.size(), cat_got.c_str());
    const bool as_expected = sent.delivered == 2 && refused.code == sb::status::invalid_text &&
                             ben_got == "room\tlobby\tann\tgg\n" && cat_got == "room lobby ann gg\n";
    return as_expected ? 0 : 1;
}
