#include "http2/hpack.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "http2/scratch.hpp"
#include "http2/words.hpp"

namespace blitz::http2::hpack {

namespace {

// ---------------------------------------------------------------------------------------------
// Static table (RFC 7541 Appendix A). Index i is kStatic[i - 1].

struct StaticEntry {
    std::string_view name;
    std::string_view value;
};

constexpr std::array<StaticEntry, 61> kStatic = {{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

constexpr std::uint32_t kStaticCount = kStatic.size();
static_assert(kStatic[kDateIndex - 1].name == "date" && kStatic[kContentLengthIndex - 1].name == "content-length");
// The static table's only connection-specific name (RFC 9113 §8.2.2).
static_assert(kStatic[kTransferEncodingIndex - 1].name == "transfer-encoding" &&
              std::none_of(kStatic.begin(), kStatic.end(), [](const StaticEntry& e) {
                  return e.name == "connection" || e.name == "keep-alive" || e.name == "proxy-connection" ||
                         e.name == "upgrade" || e.name == "te";
              }));
constexpr std::uint32_t kEntryOverhead = 32;  // RFC 7541 §4.1

// The encoder looks names up per response field: static indices grouped by name length (in
// index order within a length, so the first match is the lowest index).
constexpr std::size_t kLongestStaticName = 27;  // access-control-allow-origin

struct Buckets {
    std::array<std::uint8_t, kStaticCount> index{};
    std::array<std::uint8_t, kLongestStaticName + 2> start{};  // bucket n: [start[n], start[n+1])
};

constexpr Buckets make_buckets() {
    Buckets b;
    std::size_t k = 0;
    for (std::size_t len = 0; len <= kLongestStaticName; ++len) {
        b.start[len] = static_cast<std::uint8_t>(k);
        for (std::size_t i = 0; i < kStaticCount; ++i) {
            if (kStatic[i].name.size() == len) {
                b.index[k++] = static_cast<std::uint8_t>(i + 1);
            }
        }
    }
    b.start[kLongestStaticName + 1] = static_cast<std::uint8_t>(k);
    return b;
}

constexpr Buckets kBuckets = make_buckets();
static_assert(kBuckets.start[kLongestStaticName + 1] == kStaticCount, "a static name is longer");

// Names looked up in any case. A name's key is up to four little-endian words of its bytes:
// from 8 bytes on, each whole word and then the last 8 bytes (overlapping); 4..7 bytes, the
// first and the last four; 1..3 bytes, the first, middle and last byte. A static name's mask has
// 0x20 in the key bytes that are letters, so (key | mask) == the static key exactly when the
// name is the static one in any case.
struct NameKey {
    std::array<std::uint64_t, 4> word{};
};

constexpr std::uint64_t le_bytes(const char* p, std::size_t n) noexcept {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < n; ++i) {
        w |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    }
    return w;
}

template <typename Load8, typename Load4, typename Byte>
constexpr NameKey make_key(std::size_t n, Load8 load8, Load4 load4, Byte byte) noexcept {
    NameKey k;
    if (n >= 8) {
        std::size_t w = 0;
        for (; w < n / 8; ++w) {
            k.word[w] = load8(8 * w);
        }
        k.word[w] = load8(n - 8);
    } else if (n >= 4) {
        k.word[0] = load4(0) | load4(n - 4) << 32;
    } else if (n > 0) {
        k.word[0] = byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16;
    }
    return k;
}

constexpr NameKey key_of(std::string_view s) noexcept {
    return make_key(
        s.size(), [&](std::size_t at) { return le_bytes(s.data() + at, 8); },
        [&](std::size_t at) { return le_bytes(s.data() + at, 4); },
        [&](std::size_t at) { return std::uint64_t{static_cast<unsigned char>(s[at])}; });
}

constexpr std::size_t key_words(std::size_t n) noexcept { return n >= 8 ? n / 8 + 1 : 1; }

struct CaselessName {
    NameKey key;
    NameKey letters;
};

constexpr std::array<CaselessName, kStaticCount> kCaseless = [] {
    std::array<CaselessName, kStaticCount> t{};
    for (std::size_t i = 0; i < kStaticCount; ++i) {
        const std::string_view name = kStatic[i].name;
        std::array<char, kLongestStaticName> mask{};
        for (std::size_t j = 0; j < name.size(); ++j) {
            mask[j] = name[j] >= 'a' && name[j] <= 'z' ? 0x20 : 0;
        }
        t[i] = {key_of(name), key_of({mask.data(), name.size()})};
    }
    return t;
}();

// The first regular (not pseudo) static entry.
constexpr std::uint8_t kFirstRegular = 15;
static_assert(kStatic[kFirstRegular - 2].name == ":status" && kStatic[kFirstRegular - 1].name[0] != ':');

}  // namespace

std::uint8_t regular_static_name(std::string_view name) noexcept {
    const std::size_t n = name.size();
    if (n == 0 || n > kLongestStaticName) {
        return 0;
    }
    const char* const p = name.data();
    const NameKey key = make_key(
        n, [p](std::size_t at) { return load64(p + at); }, [p](std::size_t at) { return std::uint64_t{load32(p + at)}; },
        [p](std::size_t at) { return std::uint64_t{static_cast<unsigned char>(p[at])}; });
    const std::size_t words = key_words(n);
    const std::size_t end = kBuckets.start[n + 1];
    for (std::size_t b = kBuckets.start[n]; b < end; ++b) {
        const std::uint8_t i = kBuckets.index[b];
        if (i < kFirstRegular) {
            continue;
        }
        const CaselessName& c = kCaseless[i - 1];
        bool same = true;
        for (std::size_t w = 0; w < words; ++w) {
            same &= (key.word[w] | c.letters.word[w]) == c.key.word[w];
        }
        if (same) {
            return i;
        }
    }
    return 0;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Huffman code (RFC 7541 Appendix B). It is canonical: codes are handed out in order of
// increasing length and, within a length, of increasing symbol, so the code lengths alone
// determine it. Symbol 256 is EOS.

constexpr std::array<std::uint8_t, 257> kCodeBits = {
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,  // 0x00
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,  // 0x10
    6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11, 8,  6,  6,  6,   // ' ' .. '/'
    5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10,  // '0' .. '?'
    13, 6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,   // '@' .. 'O'
    7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8,  13, 19, 13, 14, 6,   // 'P' .. '_'
    15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,   // '`' .. 'o'
    6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7,  15, 11, 14, 13, 28,  // 'p' .. 0x7f
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,  // 0x80
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,  // 0x90
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,  // 0xa0
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,  // 0xb0
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,  // 0xc0
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,  // 0xd0
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,  // 0xe0
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,  // 0xf0
    30,                                                              // EOS
};

constexpr unsigned kEos = 256;
constexpr unsigned kLongestCode = 30;

struct Code {
    std::uint32_t bits;
    std::uint8_t len;
};

constexpr std::array<Code, 257> make_codes() {
    std::array<Code, 257> codes{};
    std::uint32_t next = 0;
    for (unsigned len = 1; len <= kLongestCode; ++len) {
        for (unsigned sym = 0; sym <= kEos; ++sym) {
            if (kCodeBits[sym] == len) {
                codes[sym] = {next++, static_cast<std::uint8_t>(len)};
            }
        }
        next <<= 1;
    }
    return codes;
}

constexpr std::array<Code, 257> kCodes = make_codes();
// A complete prefix code (Kraft sum 1) ends in the all-ones code, which RFC 7541 gives EOS.
static_assert(kCodes[kEos].bits == (1u << kLongestCode) - 1, "Huffman code lengths are wrong");

// Decoding reads a nibble at a time through a state machine over the code tree's 256 internal
// nodes (state 0 is the root). No code is shorter than 5 bits, so a nibble completes at most one
// symbol.
enum : std::uint8_t {
    kEmit = 1,    // `sym` was completed
    kFail = 2,    // EOS was decoded (§5.2: an error)
    kAccept = 4,  // the bits since the last symbol are all ones and at most 7: valid padding
};

struct Step {
    std::uint8_t next;
    std::uint8_t sym;
    std::uint8_t flags;
};

struct DecodeTable {
    std::array<std::array<Step, 16>, 256> step{};
};

constexpr DecodeTable make_decode_table() {
    // Children: >= 0 an internal node, < 0 the leaf of symbol -child - 1.
    std::array<std::array<std::int16_t, 2>, 256> child{};
    std::array<std::uint8_t, 256> depth{};
    std::array<bool, 256> ones{};
    ones[0] = true;
    int nodes = 1;
    for (unsigned sym = 0; sym <= kEos; ++sym) {
        int n = 0;
        for (int b = kCodes[sym].len - 1; b >= 0; --b) {
            const unsigned bit = (kCodes[sym].bits >> b) & 1;
            if (b == 0) {
                child[n][bit] = static_cast<std::int16_t>(-static_cast<int>(sym) - 1);
                break;
            }
            if (child[n][bit] == 0) {
                child[n][bit] = static_cast<std::int16_t>(nodes);
                depth[nodes] = depth[n] + 1;
                ones[nodes] = ones[n] && bit == 1;
                ++nodes;
            }
            n = child[n][bit];
        }
    }
    DecodeTable t;
    for (int state = 0; state < 256; ++state) {
        for (unsigned nibble = 0; nibble < 16; ++nibble) {
            Step s{};
            int n = state;
            for (int b = 3; b >= 0; --b) {
                const std::int16_t c = child[n][(nibble >> b) & 1];
                if (c >= 0) {
                    n = c;
                    continue;
                }
                const int sym = -c - 1;
                if (sym == static_cast<int>(kEos)) {
                    s.flags |= kFail;
                } else {
                    s.flags |= kEmit;
                    s.sym = static_cast<std::uint8_t>(sym);
                }
                n = 0;
            }
            s.next = static_cast<std::uint8_t>(n);
            if (ones[n] && depth[n] <= 7) {
                s.flags |= kAccept;
            }
            t.step[state][nibble] = s;
        }
    }
    return t;
}

constexpr DecodeTable kDecode = make_decode_table();

// Symbols are at least 5 bits long; huffman_decode() stores one byte past the last symbol.
std::size_t huffman_decoded_bound(std::size_t len) noexcept { return len * 8 / 5 + 1; }

// Writes the decoded bytes at `out` (room for huffman_decoded_bound(len)) and returns their
// number, or -1.
std::ptrdiff_t huffman_decode(const std::uint8_t* in, std::size_t len, char* out) noexcept {
    std::uint8_t state = 0;
    std::uint8_t flags = kAccept;
    char* o = out;
    for (std::size_t i = 0; i < len; ++i) {
        const Step& hi = kDecode.step[state][in[i] >> 4];
        *o = static_cast<char>(hi.sym);
        o += hi.flags & kEmit;
        const Step& lo = kDecode.step[hi.next][in[i] & 0x0f];
        *o = static_cast<char>(lo.sym);
        o += lo.flags & kEmit;
        if (((hi.flags | lo.flags) & kFail) != 0) {
            return -1;
        }
        state = lo.next;
        flags = lo.flags;
    }
    return (flags & kAccept) != 0 ? o - out : -1;
}

std::size_t huffman_length(std::string_view s) noexcept {
    std::size_t bits = 0;
    for (unsigned char c : s) {
        bits += kCodes[c].len;
    }
    return (bits + 7) / 8;
}

std::uint8_t* huffman_encode(std::uint8_t* out, std::string_view s) noexcept {
    // Codes are at most 30 bits: with fewer than 32 bits pending, one more always fits the
    // 64-bit accumulator, and whole 32-bit words go out at once (one branch per symbol).
    std::uint64_t acc = 0;
    unsigned n = 0;
    for (unsigned char c : s) {
        const Code code = kCodes[c];
        acc = (acc << code.len) | code.bits;
        n += code.len;
        if (n >= 32) {
            n -= 32;
            const auto word = static_cast<std::uint32_t>(acc >> n);
            out[0] = static_cast<std::uint8_t>(word >> 24);
            out[1] = static_cast<std::uint8_t>(word >> 16);
            out[2] = static_cast<std::uint8_t>(word >> 8);
            out[3] = static_cast<std::uint8_t>(word);
            out += 4;
        }
    }
    while (n >= 8) {
        n -= 8;
        *out++ = static_cast<std::uint8_t>(acc >> n);
    }
    if (n > 0) {
        // §5.2: padding is the most significant bits of EOS, all ones.
        *out++ = static_cast<std::uint8_t>((acc << (8 - n)) | (0xffu >> n));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Integers and strings (§5.1, §5.2).

constexpr unsigned kMaxContinuation = 5;  // 7 bits each: enough for 2^32 - 1 after any prefix

// Reads an integer whose prefix is the low `prefix` bits of *p (p < end).
bool read_int(const std::uint8_t*& p, const std::uint8_t* end, unsigned prefix,
              std::uint32_t& out) noexcept {
    const std::uint32_t max_prefix = (1u << prefix) - 1;
    std::uint64_t v = *p++ & max_prefix;
    if (v < max_prefix) {
        out = static_cast<std::uint32_t>(v);
        return true;
    }
    for (unsigned i = 0; i < kMaxContinuation; ++i) {
        if (p == end) {
            return false;
        }
        const std::uint8_t b = *p++;
        v += static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (v > 0xffffffffu) {
                return false;
            }
            out = static_cast<std::uint32_t>(v);
            return true;
        }
    }
    // More continuation bytes than any 32-bit value needs: padding with 0x80 bytes.
    return false;
}

std::uint8_t* write_int(std::uint8_t* out, std::uint8_t first, unsigned prefix,
                        std::size_t v) noexcept {
    const std::size_t max_prefix = (std::size_t{1} << prefix) - 1;
    if (v < max_prefix) {
        *out++ = static_cast<std::uint8_t>(first | v);
        return out;
    }
    *out++ = static_cast<std::uint8_t>(first | max_prefix);
    for (v -= max_prefix; v >= 0x80; v >>= 7) {
        *out++ = static_cast<std::uint8_t>(0x80 | (v & 0x7f));
    }
    *out++ = static_cast<std::uint8_t>(v);
    return out;
}

std::uint8_t* write_string(std::uint8_t* out, std::string_view s) noexcept {
    if (s.size() < 0x7f) {
        // Short (most values): Huffman-code into a buffer that holds the longest outcome (30
        // bits a symbol), keep it when shorter than the raw bytes; one pass, not two.
        std::uint8_t coded[0x7f * 30 / 8 + 1];
        const auto huffman = static_cast<std::size_t>(huffman_encode(coded, s) - coded);
        if (huffman < s.size()) {
            *out = static_cast<std::uint8_t>(0x80 | huffman);
            std::memcpy(out + 1, coded, huffman);
            return out + 1 + huffman;
        }
        *out = static_cast<std::uint8_t>(s.size());
        if (!s.empty()) {
            std::memcpy(out + 1, s.data(), s.size());
        }
        return out + 1 + s.size();
    }
    const std::size_t huffman = huffman_length(s);
    if (huffman < s.size()) {
        return huffman_encode(write_int(out, 0x80, 7, huffman), s);
    }
    out = write_int(out, 0, 7, s.size());
    if (!s.empty()) {
        std::memcpy(out, s.data(), s.size());
    }
    return out + s.size();
}

struct EncodedString {
    const std::uint8_t* data = nullptr;
    std::uint32_t len = 0;
    bool huffman = false;
};

bool read_string(const std::uint8_t*& p, const std::uint8_t* end, EncodedString& s) noexcept {
    if (p == end) {
        return false;
    }
    s.huffman = (*p & 0x80) != 0;
    if (!read_int(p, end, 7, s.len) || s.len > static_cast<std::size_t>(end - p)) {
        return false;
    }
    s.data = p;
    p += s.len;
    return true;
}

// Huffman output and copies of dynamic entries, alive for the duration of a sink call.
[[gnu::tls_model("initial-exec")]] thread_local Scratch scratch;

inline std::string_view view(const std::uint8_t* p, std::size_t n) noexcept {
    return {reinterpret_cast<const char*>(p), n};
}

// A string as it will be handed over: the block's bytes, or Huffman-decoded into `out`.
bool decoded(const EncodedString& s, char*& out, std::string_view& v) noexcept {
    if (!s.huffman) {
        v = view(s.data, s.len);
        return true;
    }
    const std::ptrdiff_t n = huffman_decode(s.data, s.len, out);
    if (n < 0) {
        return false;
    }
    v = {out, static_cast<std::size_t>(n)};
    out += n;
    return true;
}

std::size_t decoded_bound(const EncodedString& s) noexcept {
    return s.huffman ? huffman_decoded_bound(s.len) : 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Decoder

// Names and values are stored back to back in a ring of bytes (an entry's may wrap around its
// end), and a ring of entries says where each begins; both hold the oldest entry first and grow
// on demand up to what max_size allows. Decoder and Encoder keep the §4.1 accounting and the
// eviction policy.
struct DynamicTable {
    struct Entry {
        std::uint32_t offset;
        std::uint32_t name_len : 31;  // an entry is at most max_size - 32 bytes (below 2^31)
        std::uint32_t vetted : 1;     // a sink accepted the field when it was inserted
        std::uint32_t value_len;
    };

    std::unique_ptr<char[]> data;
    std::unique_ptr<Entry[]> entries;
    std::uint32_t data_cap = 0;
    std::uint32_t data_tail = 0;  // where the next entry's bytes go
    std::uint32_t data_used = 0;
    std::uint32_t entries_cap = 0;
    std::uint32_t first = 0;  // slot of the oldest entry
    std::uint32_t count = 0;

    // Heap bytes of a table (none when it is not allocated yet).
    static std::size_t heap_bytes(const DynamicTable* t) noexcept {
        return t == nullptr ? 0 : sizeof(DynamicTable) + t->data_cap + std::size_t{t->entries_cap} * sizeof(Entry);
    }

    const Entry& entry(std::uint32_t i) const noexcept;  // 0 is the newest
    Entry& newest() noexcept { return entries[(first + count - 1) % entries_cap]; }
    void copy_out(std::size_t offset, std::uint32_t len, char* out) const noexcept;
    std::string_view part(std::size_t offset, std::uint32_t len, char*& out) const noexcept;
    bool holds(const Entry& e, std::string_view name, std::string_view value) const noexcept;
    std::uint32_t evict_oldest() noexcept;  // returns the §4.1 size freed
    void push(std::string_view name, std::string_view value, std::uint32_t max_size);
    void grow_data(std::uint32_t need, std::uint32_t max_size);
    void grow_entries(std::uint32_t max_size);
};

// Every HTTP/2 connection embeds a Decoder, and idle memory per connection is held to h2o's (726
// bytes): an idle decoder is the table pointer and three sizes, everything else is in DynamicTable.
static_assert(sizeof(Decoder) <= 24, "the dynamic table's state belongs in DynamicTable");

Decoder::Decoder(std::uint32_t max_size) noexcept : max_size_(max_size), limit_(max_size) {}

Decoder::~Decoder() = default;

std::size_t Decoder::heap_bytes() const noexcept { return DynamicTable::heap_bytes(table_.get()); }

const DynamicTable::Entry& DynamicTable::entry(std::uint32_t i) const noexcept {
    std::uint32_t slot = first + count - 1 - i;
    if (slot >= entries_cap) {
        slot -= entries_cap;
    }
    return entries[slot];
}

void DynamicTable::copy_out(std::size_t offset, std::uint32_t len, char* out) const noexcept {
    if (offset >= data_cap) {
        offset -= data_cap;
    }
    const std::size_t head = std::min<std::size_t>(len, data_cap - offset);
    if (head > 0) {
        std::memcpy(out, data.get() + offset, head);
    }
    if (len > head) {
        std::memcpy(out + head, data.get(), len - head);
    }
}

std::string_view DynamicTable::part(std::size_t offset, std::uint32_t len,
                                      char*& out) const noexcept {
    if (offset >= data_cap) {
        offset -= data_cap;
    }
    if (len <= data_cap - offset) {
        return {data.get() + offset, len};
    }
    // The bytes wrap around the end of the ring: the sink gets a contiguous copy.
    copy_out(offset, len, out);
    const std::string_view v{out, len};
    out += len;
    return v;
}

namespace {

// Whether n bytes at a and b are equal: up to 16 bytes with overlapping word loads inside both
// ranges (a name, a short value), longer ones by memcmp.
bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
    if (n > 16) {
        return std::memcmp(a, b, n) == 0;
    }
    if (n >= 8) {
        return ((load64(a) ^ load64(b)) | (load64(a + n - 8) ^ load64(b + n - 8))) == 0;
    }
    if (n >= 4) {
        return ((load32(a) ^ load32(b)) | (load32(a + n - 4) ^ load32(b + n - 4))) == 0;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool DynamicTable::holds(const Entry& e, std::string_view name, std::string_view value) const noexcept {
    if (e.name_len != name.size() || e.value_len != value.size()) {
        return false;
    }
    const char* const d = data.get();
    if (std::size_t{e.offset} + e.name_len + e.value_len <= data_cap) {
        return same_bytes(d + e.offset + e.name_len, value.data(), value.size()) &&
               same_bytes(d + e.offset, name.data(), name.size());
    }
    // Name and value are back to back from e.offset, wrapping around the ring's end.
    auto same = [this](std::size_t offset, std::string_view s) {
        if (s.empty()) {
            return true;
        }
        if (offset >= data_cap) {
            offset -= data_cap;
        }
        const std::size_t head = std::min<std::size_t>(s.size(), data_cap - offset);
        return std::memcmp(data.get() + offset, s.data(), head) == 0 &&
               std::memcmp(data.get(), s.data() + head, s.size() - head) == 0;
    };
    return same(e.offset, name) && same(std::size_t{e.offset} + e.name_len, value);
}

std::uint32_t DynamicTable::evict_oldest() noexcept {
    const Entry& e = entries[first];
    const std::uint32_t bytes = e.name_len + e.value_len;
    data_used -= bytes;
    if (++first == entries_cap) {
        first = 0;
    }
    if (--count == 0) {
        // An empty ring starts over at its beginning, so fewer entries wrap.
        first = 0;
        data_tail = 0;
    }
    return bytes + kEntryOverhead;
}

void DynamicTable::grow_data(std::uint32_t need, std::uint32_t max_size) {
    const std::uint32_t cap =
        std::min(max_size, std::max({data_cap * 2, need, std::uint32_t{256}}));
    auto grown = std::make_unique_for_overwrite<char[]>(cap);
    // Unwrap: the oldest entry moves to offset 0.
    std::uint32_t offset = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        Entry& e = entries[(first + i) % entries_cap];
        const std::uint32_t n = e.name_len + e.value_len;
        copy_out(e.offset, n, grown.get() + offset);
        e.offset = offset;
        offset += n;
    }
    data = std::move(grown);
    data_cap = cap;
    data_tail = offset;
}

void DynamicTable::grow_entries(std::uint32_t max_size) {
    const std::uint32_t most = max_size / kEntryOverhead;
    const std::uint32_t cap = std::min(most, std::max(entries_cap * 2, std::uint32_t{8}));
    auto grown = std::make_unique_for_overwrite<Entry[]>(cap);
    for (std::uint32_t i = 0; i < count; ++i) {
        grown[i] = entries[(first + i) % entries_cap];
    }
    entries = std::move(grown);
    entries_cap = cap;
    first = 0;
}

// The caller has evicted enough for the entry to fit in a table of max_size.
void DynamicTable::push(std::string_view name, std::string_view value, std::uint32_t max_size) {
    const auto bytes = static_cast<std::uint32_t>(name.size() + value.size());
    if (data_used + bytes > data_cap) {
        grow_data(data_used + bytes, max_size);
    }
    if (count == entries_cap) {
        grow_entries(max_size);
    }
    std::uint32_t slot = first + count;
    if (slot >= entries_cap) {
        slot -= entries_cap;
    }
    entries[slot] = {data_tail, static_cast<std::uint32_t>(name.size()), 0,
                     static_cast<std::uint32_t>(value.size())};
    for (std::string_view s : {name, value}) {
        if (s.empty()) {
            continue;
        }
        const std::size_t head = std::min<std::size_t>(s.size(), data_cap - data_tail);
        if (head > 0) {
            std::memcpy(data.get() + data_tail, s.data(), head);
        }
        if (s.size() > head) {
            std::memcpy(data.get(), s.data() + head, s.size() - head);
        }
        data_tail = static_cast<std::uint32_t>((data_tail + s.size()) % data_cap);
    }
    data_used += bytes;
    ++count;
}

void Decoder::evict_to(std::uint32_t limit) noexcept {
    if (size_ <= limit) {
        return;
    }
    DynamicTable& t = *table_;  // size_ > 0: there was an insertion
    while (size_ > limit) {
        size_ -= t.evict_oldest();
    }
}

bool Decoder::insert(std::string_view name, std::string_view value) {
    const std::uint64_t size = std::uint64_t{name.size()} + value.size() + kEntryOverhead;
    if (size > limit_) {
        // §4.4: an entry larger than the table empties it and is not added.
        evict_to(0);
        return false;
    }
    evict_to(limit_ - static_cast<std::uint32_t>(size));
    if (table_ == nullptr) {
        table_ = std::make_unique<DynamicTable>();
    }
    table_->push(name, value, max_size_);
    size_ += static_cast<std::uint32_t>(size);
    return true;
}

Status Decoder::decode(const std::uint8_t* block, std::size_t len, FieldSink& sink) {
    const std::uint8_t* p = block;
    const std::uint8_t* const end = block + len;
    bool deliver = true;
    bool field_seen = false;
    unsigned updates = 0;
    while (p < end) {
        const std::uint8_t first = *p;
        std::uint32_t index;
        if ((first & 0x80) != 0) {
            // §6.1: indexed field.
            if (!read_int(p, end, 7, index) || index == 0) {
                return Status::Error;
            }
            field_seen = true;
            if (index <= kStaticCount) {
                const StaticEntry& e = kStatic[index - 1];
                deliver = deliver && sink.field(e.name, e.value, {true, true, false});
                continue;
            }
            index -= kStaticCount + 1;
            const DynamicTable* const t = table_.get();
            if (t == nullptr || index >= t->count) {
                return Status::Error;
            }
            const DynamicTable::Entry& e = t->entry(index);
            char* out = scratch.reserve(e.name_len + e.value_len);
            const std::string_view name = t->part(e.offset, e.name_len, out);
            const std::string_view value = t->part(e.offset + e.name_len, e.value_len, out);
            deliver = deliver && sink.field(name, value, {false, false, e.vetted == 1});
            continue;
        }
        if ((first & 0xe0) == 0x20) {
            // §4.2, §6.3: size updates come first in a block, at most two of them (the smallest
            // size since the last block, then the final one).
            std::uint32_t size;
            if (field_seen || ++updates > 2 || !read_int(p, end, 5, size) || size > max_size_) {
                return Status::Error;
            }
            limit_ = size;
            evict_to(limit_);
            continue;
        }
        // §6.2: literal with incremental indexing (01), without indexing (0000), never indexed
        // (0001).
        const bool indexing = (first & 0xc0) == 0x40;
        if (!read_int(p, end, indexing ? 6 : 4, index)) {
            return Status::Error;
        }
        field_seen = true;
        EncodedString name_literal;
        const StaticEntry* static_name = nullptr;
        const DynamicTable* const t = table_.get();
        const DynamicTable::Entry* dynamic_name = nullptr;
        if (index == 0) {
            if (!read_string(p, end, name_literal)) {
                return Status::Error;
            }
        } else if (index <= kStaticCount) {
            static_name = &kStatic[index - 1];
        } else if (t != nullptr && index - (kStaticCount + 1) < t->count) {
            dynamic_name = &t->entry(index - (kStaticCount + 1));
        } else {
            return Status::Error;
        }
        EncodedString value_literal;
        if (!read_string(p, end, value_literal)) {
            return Status::Error;
        }
        // A dynamic name is copied when it wraps, and before an insertion that may evict its
        // entry and reuse its bytes (§4.4).
        std::size_t room = decoded_bound(name_literal) + decoded_bound(value_literal);
        if (dynamic_name != nullptr) {
            room += dynamic_name->name_len;
        }
        char* out = room > 0 ? scratch.reserve(room) : nullptr;
        std::string_view name;
        std::string_view value;
        if (static_name != nullptr) {
            name = static_name->name;
        } else if (dynamic_name == nullptr) {
            if (!decoded(name_literal, out, name)) {
                return Status::Error;
            }
        } else if (indexing) {
            t->copy_out(dynamic_name->offset, dynamic_name->name_len, out);
            name = {out, dynamic_name->name_len};
            out += dynamic_name->name_len;
        } else {
            name = t->part(dynamic_name->offset, dynamic_name->name_len, out);
        }
        if (!decoded(value_literal, out, value)) {
            return Status::Error;
        }
        const bool inserted = indexing && insert(name, value);
        deliver = deliver && sink.field(name, value, {static_name != nullptr, false, false});
        if (inserted && deliver) {
            table_->newest().vetted = 1;
        }
    }
    return Status::Ok;
}

// ---------------------------------------------------------------------------------------------
// Encoder

namespace {

// Responses repeat their values: the same content-type, the date of the current second, the
// same server. Per thread, the last short value sent under each static-table name keeps its
// encoding, so a repeat costs a compare and a copy instead of Huffman coding.
struct CachedValue {
    static constexpr std::size_t kMax = 48;
    std::uint8_t len;
    std::uint8_t coded_len;  // 0: an empty slot (a coded string has its length byte at least)
    char value[kMax];
    std::uint8_t coded[kMax + 1];  // length prefix and string: never longer than the raw form
};

[[gnu::tls_model("initial-exec")]] thread_local std::array<CachedValue, kStaticCount + 1> cached_values;

std::uint8_t* write_value(std::uint8_t* out, std::uint8_t name_index, std::string_view value) noexcept {
    if (name_index == 0 || value.size() > CachedValue::kMax) {
        return write_string(out, value);
    }
    CachedValue& c = cached_values[name_index];
    if (c.coded_len != 0 && c.len == value.size() && std::memcmp(c.value, value.data(), value.size()) == 0) {
        std::memcpy(out, c.coded, c.coded_len);
        return out + c.coded_len;
    }
    std::uint8_t* const end = write_string(out, value);
    c.len = static_cast<std::uint8_t>(value.size());
    std::memcpy(c.value, value.data(), value.size());
    c.coded_len = static_cast<std::uint8_t>(end - out);
    std::memcpy(c.coded, out, c.coded_len);
    return end;
}

}  // namespace

Encoder::Encoder() noexcept = default;

Encoder::~Encoder() = default;

std::size_t Encoder::heap_bytes() const noexcept { return DynamicTable::heap_bytes(table_.get()); }

void Encoder::peer_table_size(std::uint32_t bytes) noexcept {
    // RFC 7541 §4.2: a SETTINGS_HEADER_TABLE_SIZE below what the peer's decoder last heard
    // from us must be answered by a size update at the start of the next block (the smallest
    // one, if several came); a larger one needs nothing, our table stays as it is.
    if (bytes >= decoder_max_) {
        return;
    }
    update_ = std::min(update_, bytes);
    limit_ = std::min(limit_, bytes);
    evict_to(limit_);
}

std::size_t Encoder::begin_block(std::uint8_t* out) noexcept {
    if (update_ == kNoUpdate) {
        return 0;
    }
    decoder_max_ = update_;
    update_ = kNoUpdate;
    return static_cast<std::size_t>(write_int(out, 0x20, 5, decoder_max_) - out);  // §6.3
}

void Encoder::evict_to(std::uint32_t limit) noexcept {
    while (size_ > limit) {
        size_ -= table_->evict_oldest();
    }
}

std::size_t Encoder::encode(std::uint8_t* out, std::uint8_t static_name, std::string_view name,
                            std::string_view value) {
    if (table_ != nullptr) {
        const DynamicTable& t = *table_;
        for (std::uint32_t i = 0; i < t.count; ++i) {
            if (t.holds(t.entry(i), name, value)) {
                return static_cast<std::size_t>(write_int(out, 0x80, 7, kStaticCount + 1 + i) - out);  // §6.1
            }
        }
    }
    // Small fields are indexed (§6.2.1), the table keeping the newest; Set-Cookie values are
    // per client and never are (a shared table would only mix them with other responses').
    const std::uint64_t size = std::uint64_t{name.size()} + value.size() + kEntryOverhead;
    if (static_name == kSetCookieIndex || size > limit_ / 2) {
        // §6.2.2: literal without indexing.
        std::uint8_t* p = write_int(out, 0x00, 4, static_name);
        if (static_name == 0) {
            p = write_string(p, name);
        }
        return static_cast<std::size_t>(write_value(p, static_name, value) - out);
    }
    std::uint8_t* p = write_int(out, 0x40, 6, static_name);
    if (static_name == 0) {
        p = write_string(p, name);
    }
    p = write_value(p, static_name, value);
    evict_to(limit_ - static_cast<std::uint32_t>(size));
    if (table_ == nullptr) {
        table_ = std::make_unique<DynamicTable>();
    }
    table_->push(name, value, kMaxSize);
    size_ += static_cast<std::uint32_t>(size);
    return static_cast<std::size_t>(p - out);
}

std::string_view static_name(std::uint8_t index) noexcept { return kStatic[index - 1].name; }

std::size_t encode_status(std::uint8_t* out, int status) noexcept {
    // The static table's ":status" entries, indices 8..14.
    constexpr int kIndexed[] = {200, 204, 206, 304, 400, 404, 500};
    for (std::size_t i = 0; i < std::size(kIndexed); ++i) {
        if (kIndexed[i] == status) {
            out[0] = static_cast<std::uint8_t>(0x80 | (8 + i));
            return 1;
        }
    }
    const char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                            static_cast<char>('0' + status / 10 % 10),
                            static_cast<char>('0' + status % 10)};
    out[0] = 8;  // §6.2.2, name index 8 (":status")
    return static_cast<std::size_t>(write_string(out + 1, {digits, 3}) - out);
}

}  // namespace blitz::http2::hpack
