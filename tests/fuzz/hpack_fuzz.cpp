// libFuzzer target for the HPACK codec (lib/http2/hpack.cpp). An input is a mode byte, then
// header blocks for one Decoder, each preceded by its length (one byte; 255 means "the rest of
// the input"), so the dynamic table carries state from block to block.
//
// The mode byte picks:
//   bits 0..1  max_size: 0, 64, 256 or 4096
//   bits 2..4  after how many fields the sink asks to stop (0: never)
//   bits 5..7  part of a status code for encode_status
// Checked: every view a sink gets is readable (each block is a separate heap copy, so reading
// past it is an ASan report) and no longer than Huffman can make a block's bytes or the table
// can hold; the table stays within max_size and its memory within max_size plus 12 bytes an
// entry and 40 of bookkeeping; every decoded block's fields, encoded again twice by one Encoder
// (within max_field_bytes) for the whole input, decode back to the same fields in the Decoder
// that follows it (its dynamic table in step: at least as full); encode_status gives back its code;
// a field the decoder calls vetted is one an earlier sink call accepted, byte for byte.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http2/hpack.hpp"

namespace {

namespace hpack = blitz::http2::hpack;

using Fields = std::vector<std::pair<std::string, std::string>>;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

// Every field some sink of one decoder accepted (returned true for).
using Accepted = std::set<std::pair<std::string, std::string>>;

class Sink final : public hpack::FieldSink {
public:
    // A sink that refuses (stops at) values starting with 'x' when `refuse_x`.
    Sink(std::size_t limit, std::size_t stop_after, Accepted& accepted, bool refuse_x)
        : limit_(limit), stop_after_(stop_after), accepted_(accepted), refuse_x_(refuse_x) {}

    bool field(std::string_view name, std::string_view value, hpack::Origin origin) override {
        check(!stopped_);
        check(name.size() + value.size() <= limit_);
        check(!origin.value_static || origin.name_static);
        // Static names are lower case and never empty.
        check(!origin.name_static ||
              (!name.empty() && (name[0] == ':' || (name[0] >= 'a' && name[0] <= 'z'))));
        std::pair<std::string, std::string> f{name, value};
        // A vetted field is one a sink of the same decoder accepted before; the input's sinks
        // refuse a value starting with 'x' (and stop), so refused entries are in the table too.
        check(!origin.vetted || accepted_.contains(f));
        stopped_ = (stop_after_ != 0 && fields.size() + 1 == stop_after_) || (refuse_x_ && value.starts_with('x'));
        if (!stopped_) {
            accepted_.insert(f);
        }
        fields.push_back(std::move(f));
        return !stopped_;
    }

    Fields fields;

private:
    std::size_t limit_;
    std::size_t stop_after_;
    Accepted& accepted_;
    bool refuse_x_;
    bool stopped_ = false;
};

// The longest static entry, "accept-encoding: gzip, deflate", is 28 bytes; an indexed field
// takes one byte of the block.
constexpr std::size_t kLongestStatic = 28;

// The longest a field decoded from `len` bytes can be: Huffman turns 5 bits into a byte, an
// entry of the table holds at most max_size - 32 bytes.
std::size_t field_limit(std::size_t len, std::uint32_t max_size) {
    return std::max<std::size_t>(len * 8 / 5, max_size) + kLongestStatic;
}

std::uint32_t max_size_of(std::uint8_t mode) {
    constexpr std::array<std::uint32_t, 4> kSizes = {0, 64, 256, 4096};
    return kSizes[mode & 3];
}

// An Encoder and the Decoder that follows its blocks, for one input.
struct RoundTrip {
    hpack::Encoder encoder;
    hpack::Decoder decoder{4096};
    Accepted accepted;
};

// `fields` encoded as a block by the round trip's encoder decode back to them in its decoder
// (twice: the second time mostly from the dynamic table).
void round_trip(RoundTrip& rt, const Fields& fields) {
    for (int pass = 0; pass < 2; ++pass) {
        std::size_t room = hpack::Encoder::kMaxBlockPrefix;
        for (const auto& [name, value] : fields) {
            room += hpack::max_field_bytes(name, value);
        }
        const auto block = std::make_unique<std::uint8_t[]>(room);
        std::size_t len = rt.encoder.begin_block(block.get());
        for (const auto& [name, value] : fields) {
            std::uint8_t index = hpack::regular_static_name(name);
            if (index != 0 && hpack::static_name(index) != name) {
                index = 0;  // the name in another case: sent as it is
            }
            const std::size_t n = rt.encoder.encode(block.get() + len, index, name, value);
            check(n <= hpack::max_field_bytes(name, value));
            len += n;
        }
        Sink sink(field_limit(len, 4096), 0, rt.accepted, false);
        check(rt.decoder.decode(block.get(), len, sink) == hpack::Status::Ok);
        check(sink.fields == fields);
        check(rt.encoder.table_size() <= hpack::Encoder::kMaxSize);
        check(rt.decoder.table_size() >= rt.encoder.table_size());
    }
}

void status_round_trip(int status) {
    std::uint8_t out[5];
    const std::size_t n = hpack::encode_status(out, status);
    check(n <= sizeof out);
    hpack::Decoder d(0);
    Accepted accepted;
    Sink sink(field_limit(n, 0), 0, accepted, false);
    check(d.decode(out, n, sink) == hpack::Status::Ok);
    check(sink.fields == Fields{{":status", std::to_string(status)}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::uint8_t mode = data[0];
    const std::uint32_t max_size = max_size_of(mode);
    const std::size_t stop_after = (mode >> 2) & 7;
    hpack::Decoder decoder(max_size);
    Accepted accepted;
    RoundTrip rt;
    std::size_t at = 1;
    while (at < size) {
        const std::size_t want = data[at++];
        const std::size_t len = want == 255 ? size - at : std::min(want, size - at);
        const auto block = std::make_unique<std::uint8_t[]>(len);
        std::copy(data + at, data + at + len, block.get());
        at += len;
        Sink sink(field_limit(len, max_size), stop_after, accepted, true);
        const hpack::Status status = decoder.decode(block.get(), len, sink);
        check(decoder.table_size() <= max_size);
        check(decoder.heap_bytes() <= max_size + max_size / 32 * 12 + 40);
        if (status == hpack::Status::Error) {
            break;
        }
        round_trip(rt, sink.fields);
        status_round_trip(100 + (mode >> 5) * 100 + static_cast<int>(len % 100));
    }
    return 0;
}
