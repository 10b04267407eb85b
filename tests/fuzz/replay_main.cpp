// Replay runner for the fuzz targets, without libFuzzer: linked with one *_fuzz.cpp it reads every
// file named on the command line (a directory stands for the files in it, recursively, in sorted
// order) and calls LLVMFuzzerTestOneInput on each. CTest runs it on tests/fuzz/corpus/<target>/
// (label fuzz-corpus), so every seed and every crash input saved there is replayed by the normal
// gcc + ASan/UBSan build. A failed invariant aborts; the last "replay:" line names the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// Adds `path` (a file, or the regular files under a directory) to `out`; false when it is neither.
bool collect(const fs::path& path, std::vector<fs::path>& out) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
        out.push_back(path);
        return true;
    }
    if (!fs::is_directory(path, ec)) return false;
    std::vector<fs::path> found;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec)) found.push_back(it->path());
    if (ec) return false;
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n"
                             "Runs the fuzz target once on each input (no fuzzing).\n",
                     argv[0]);
        return 2;
    }
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        if (!collect(argv[i], inputs)) {
            std::fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (inputs.empty()) {
        std::fprintf(stderr, "%s: no input files (an empty corpus replays nothing)\n", argv[0]);
        return 2;
    }
    std::size_t bytes = 0;
    for (const fs::path& p : inputs) {
        std::ifstream file(p, std::ios::binary);
        const std::vector<char> content{std::istreambuf_iterator<char>(file),
                                        std::istreambuf_iterator<char>()};
        if (!file.good() && !file.eof()) {
            std::fprintf(stderr, "%s: cannot read %s\n", argv[0], p.string().c_str());
            return 2;
        }
        std::printf("replay: %s (%zu bytes)\n", p.string().c_str(), content.size());
        std::fflush(stdout);
        (void)LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(content.data()), content.size());
        bytes += content.size();
    }
    std::printf("replayed %zu input(s), %zu bytes: no invariant violated\n", inputs.size(), bytes);
    return 0;
}
