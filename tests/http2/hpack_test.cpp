// hpack::Decoder and the hpack encoder against RFC 7541's examples (Appendix C, written out
// from the RFC's text) and against nghttp2's HPACK implementation as an independent oracle:
// nghttp2's deflater feeds our decoder, our encoder feeds nghttp2's inflater.

#include "http2/hpack.hpp"
#include "http2/fields.hpp"
#include "http/token.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#define CATCH_CONFIG_ENABLE_PAIR_STRINGMAKER
#include <catch2/catch_test_macros.hpp>

namespace hpack = blitz::http2::hpack;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using Bytes = std::vector<std::uint8_t>;

struct Collect final : hpack::FieldSink {
    Fields fields;
    std::vector<std::tuple<bool, bool, bool>> origins;  // name_static, value_static, vetted
    std::size_t stop_after = std::numeric_limits<std::size_t>::max();

    bool field(std::string_view name, std::string_view value, hpack::Origin origin) override {
        fields.emplace_back(std::string(name), std::string(value));
        origins.emplace_back(origin.name_static, origin.value_static, origin.vetted);
        return fields.size() < stop_after;
    }
};

Bytes hex(std::string_view text) {
    Bytes out;
    int high = -1;
    for (char c : text) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else {
            continue;
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(high << 4 | v));
            high = -1;
        }
    }
    return out;
}

Bytes bytes(std::initializer_list<int> list) {
    Bytes out;
    for (int b : list) {
        out.push_back(static_cast<std::uint8_t>(b));
    }
    return out;
}

void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

// RFC 7541 §5.1 integer with any value, for building blocks the encoder would never produce.
void put_int(Bytes& out, std::uint8_t first, unsigned prefix, std::uint64_t v) {
    const std::uint64_t max_prefix = (std::uint64_t{1} << prefix) - 1;
    if (v < max_prefix) {
        out.push_back(static_cast<std::uint8_t>(first | v));
        return;
    }
    out.push_back(static_cast<std::uint8_t>(first | max_prefix));
    for (v -= max_prefix; v >= 0x80; v >>= 7) {
        out.push_back(static_cast<std::uint8_t>(0x80 | (v & 0x7f)));
    }
    out.push_back(static_cast<std::uint8_t>(v));
}

// A raw (not Huffman) string literal.
void put_string(Bytes& out, std::string_view s) {
    put_int(out, 0, 7, s.size());
    append(out, s);
}

hpack::Status decode(hpack::Decoder& d, const Bytes& block, Collect& sink) {
    return d.decode(block.data(), block.size(), sink);
}

Fields decode_ok(hpack::Decoder& d, const Bytes& block) {
    Collect sink;
    REQUIRE(decode(d, block, sink) == hpack::Status::Ok);
    return sink.fields;
}

hpack::Status decode_status(const Bytes& block, std::uint32_t max_size = 4096) {
    hpack::Decoder d(max_size);
    Collect sink;
    return decode(d, block, sink);
}

class Deflater {
public:
    explicit Deflater(std::size_t max_size) { REQUIRE(nghttp2_hd_deflate_new(&d_, max_size) == 0); }
    ~Deflater() { nghttp2_hd_deflate_del(d_); }
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;

    Bytes block(const Fields& fields, std::uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
        std::vector<nghttp2_nv> nva;
        for (const auto& [name, value] : fields) {
            nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                           reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())),
                           name.size(), value.size(), flags});
        }
        Bytes out(nghttp2_hd_deflate_bound(d_, nva.data(), nva.size()));
        const auto n = nghttp2_hd_deflate_hd(d_, out.data(), out.size(), nva.data(), nva.size());
        REQUIRE(n >= 0);
        out.resize(static_cast<std::size_t>(n));
        return out;
    }

    void change_table_size(std::size_t size) {
        REQUIRE(nghttp2_hd_deflate_change_table_size(d_, size) == 0);
    }

    std::size_t table_size() const { return nghttp2_hd_deflate_get_dynamic_table_size(d_); }

private:
    nghttp2_hd_deflater* d_ = nullptr;
};

// nghttp2's reading of a block with inflater `inf`; false when it rejects it.
bool inflate(nghttp2_hd_inflater* inf, const Bytes& block, Fields& out) {
    const std::uint8_t* in = block.data();
    std::size_t left = block.size();
    bool ok = true;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        const auto n = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, left, 1);
        if (n < 0) {
            ok = false;
            break;
        }
        in += n;
        left -= static_cast<std::size_t>(n);
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
            out.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                             std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
        }
        if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
            nghttp2_hd_inflate_end_headers(inf);
            break;
        }
    }
    return ok;
}

// nghttp2's reading of a block with a new inflater.
bool inflate(const Bytes& block, Fields& out) {
    nghttp2_hd_inflater* inf = nullptr;
    REQUIRE(nghttp2_hd_inflate_new(&inf) == 0);
    const bool ok = inflate(inf, block, out);
    nghttp2_hd_inflate_del(inf);
    return ok;
}

// One header block from `encoder`, static names named by index as the server does.
Bytes encode(const Fields& fields, hpack::Encoder& encoder) {
    Bytes out(hpack::Encoder::kMaxBlockPrefix);
    out.resize(encoder.begin_block(out.data()));
    for (const auto& [name, value] : fields) {
        const std::size_t at = out.size();
        const std::size_t room = hpack::max_field_bytes(name, value);
        out.resize(at + room);
        const std::uint8_t index = hpack::regular_static_name(name);
        const std::size_t n =
            encoder.encode(out.data() + at, index, index != 0 ? hpack::static_name(index) : name, value);
        REQUIRE(n <= room);
        out.resize(at + n);
    }
    return out;
}

Bytes encode(const Fields& fields) {
    hpack::Encoder encoder;
    return encode(fields, encoder);
}

const char* const kStaticNames[] = {
    ":authority", ":method", ":path", ":scheme", ":status", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "accept", "access-control-allow-origin", "age", "allow",
    "authorization", "cache-control", "content-disposition", "content-encoding",
    "content-language", "content-length", "content-location", "content-range", "content-type",
    "cookie", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
    "link", "location", "max-forwards", "proxy-authenticate", "proxy-authorization", "range",
    "referer", "refresh", "retry-after", "server", "set-cookie", "strict-transport-security",
    "transfer-encoding", "user-agent", "vary", "via", "www-authenticate",
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// RFC 7541 Appendix C

TEST_CASE("hpack::Decoder decodes the field representations of RFC 7541 C.2", "[hpack]") {
    SECTION("C.2.1 literal with indexing") {
        hpack::Decoder d(4096);
        const Bytes block =
            hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        CHECK(decode_ok(d, block) == Fields{{"custom-key", "custom-header"}});
        CHECK(d.table_size() == 55);
    }
    SECTION("C.2.2 literal without indexing") {
        hpack::Decoder d(4096);
        CHECK(decode_ok(d, hex("040c 2f73 616d 706c 652f 7061 7468")) ==
              Fields{{":path", "/sample/path"}});
        CHECK(d.table_size() == 0);
    }
    SECTION("C.2.3 literal never indexed") {
        hpack::Decoder d(4096);
        CHECK(decode_ok(d, hex("1008 7061 7373 776f 7264 0673 6563 7265 74")) ==
              Fields{{"password", "secret"}});
        CHECK(d.table_size() == 0);
    }
    SECTION("C.2.4 indexed") {
        hpack::Decoder d(4096);
        Collect sink;
        REQUIRE(decode(d, hex("82"), sink) == hpack::Status::Ok);
        CHECK(sink.fields == Fields{{":method", "GET"}});
        CHECK(sink.origins[0] == std::tuple{true, true, false});
        CHECK(d.table_size() == 0);
    }
}

namespace {

const Fields kRequest1 = {
    {":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}};
const Fields kRequest2 = {{":method", "GET"},
                          {":scheme", "http"},
                          {":path", "/"},
                          {":authority", "www.example.com"},
                          {"cache-control", "no-cache"}};
const Fields kRequest3 = {{":method", "GET"},
                          {":scheme", "https"},
                          {":path", "/index.html"},
                          {":authority", "www.example.com"},
                          {"custom-key", "custom-value"}};

void check_requests(const char* first, const char* second, const char* third) {
    hpack::Decoder d(4096);
    CHECK(decode_ok(d, hex(first)) == kRequest1);
    CHECK(d.table_size() == 57);
    CHECK(decode_ok(d, hex(second)) == kRequest2);
    CHECK(d.table_size() == 110);
    CHECK(decode_ok(d, hex(third)) == kRequest3);
    CHECK(d.table_size() == 164);
}

const std::string kDate1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const std::string kDate2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const std::string kLocation = "https://www.example.com";

const Fields kResponse1 = {
    {":status", "302"}, {"cache-control", "private"}, {"date", kDate1}, {"location", kLocation}};
const Fields kResponse2 = {
    {":status", "307"}, {"cache-control", "private"}, {"date", kDate1}, {"location", kLocation}};
const Fields kResponse3 = {{":status", "200"},
                           {"cache-control", "private"},
                           {"date", kDate2},
                           {"location", kLocation},
                           {"content-encoding", "gzip"},
                           {"set-cookie",
                            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"}};

void check_responses(const char* first, const char* second, const char* third) {
    hpack::Decoder d(256);
    CHECK(decode_ok(d, hex(first)) == kResponse1);
    CHECK(d.table_size() == 222);
    CHECK(decode_ok(d, hex(second)) == kResponse2);
    CHECK(d.table_size() == 222);
    CHECK(decode_ok(d, hex(third)) == kResponse3);
    CHECK(d.table_size() == 215);
}

}  // namespace

TEST_CASE("hpack::Decoder decodes the requests of RFC 7541 C.3 (no Huffman)", "[hpack]") {
    check_requests("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                   "8286 84be 5808 6e6f 2d63 6163 6865",
                   "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65");
}

TEST_CASE("hpack::Decoder decodes the requests of RFC 7541 C.4 (Huffman)", "[hpack]") {
    check_requests("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                   "8286 84be 5886 a8eb 1064 9cbf",
                   "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
}

TEST_CASE("hpack::Decoder decodes the responses of RFC 7541 C.5 (no Huffman, eviction)",
          "[hpack]") {
    check_responses(
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
        "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
        "6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
        "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
        "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
        "3d31");
}

TEST_CASE("hpack::Decoder decodes the responses of RFC 7541 C.6 (Huffman, eviction)", "[hpack]") {
    check_responses(
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
        "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
        "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
        "9587 3160 65c0 03ed 4ee5 b106 3d50 07");
}

// ---------------------------------------------------------------------------------------------
// nghttp2 as the oracle

TEST_CASE("hpack Huffman codes of every symbol match nghttp2's both ways", "[hpack]") {
    for (int sym = 0; sym < 256; ++sym) {
        // 5-bit symbols around the one under test make the Huffman form the shorter one, so both
        // encoders must choose it.
        const std::string value =
            std::string(20, '0') + static_cast<char>(sym) + std::string(20, 'a');
        const Fields field = {{"x-sym", value}};
        Deflater deflater(4096);
        const Bytes theirs = deflater.block(field, NGHTTP2_NV_FLAG_NO_INDEX);
        const Bytes ours = encode(field);
        INFO("symbol " << sym);
        REQUIRE(ours.size() < value.size());
        // nghttp2 sends it never-indexed (0x10), we with incremental indexing (0x40); the
        // strings must be the same bytes.
        REQUIRE(theirs.size() == ours.size());
        CHECK(theirs[0] == 0x10);
        CHECK(ours[0] == 0x40);
        CHECK(Bytes(theirs.begin() + 1, theirs.end()) == Bytes(ours.begin() + 1, ours.end()));
        hpack::Decoder d(4096);
        CHECK(decode_ok(d, theirs) == field);
        Fields back;
        REQUIRE(inflate(ours, back));
        CHECK(back == field);
    }
    SECTION("EOS (symbol 256, 30 one bits) is rejected by both") {
        // A Huffman value of 4 bytes of ones: EOS, then two bits of padding.
        const Bytes block = bytes({0x00, 0x01, 'x', 0x84, 0xff, 0xff, 0xff, 0xff});
        CHECK(decode_status(block) == hpack::Status::Error);
        Fields back;
        CHECK_FALSE(inflate(block, back));
    }
}

TEST_CASE("hpack::Decoder follows nghttp2's deflater across blocks, eviction and size updates",
          "[hpack]") {
    std::mt19937 rng(7541);
    const std::vector<std::string> custom = {"x-request-id", "x-forwarded-for", "x-custom",
                                             "traceparent", "x-a", "x-long-header-name-for-tests"};
    auto random_value = [&](std::size_t max_len, bool binary) {
        std::string v(std::uniform_int_distribution<std::size_t>(0, max_len)(rng), '\0');
        for (char& c : v) {
            c = binary ? static_cast<char>(rng())
                       : static_cast<char>(std::uniform_int_distribution<int>(0x20, 0x7e)(rng));
        }
        return v;
    };
    const std::size_t sizes[] = {4096, 0, 100, 256, 1024, 4096};
    for (std::size_t start : {std::size_t{4096}, std::size_t{256}}) {
        Deflater deflater(start);
        hpack::Decoder d(4096);
        for (int round = 0; round < 300; ++round) {
            if (round % 37 == 36) {
                deflater.change_table_size(sizes[rng() % std::size(sizes)]);
            }
            Fields fields;
            const int n = std::uniform_int_distribution<int>(1, 12)(rng);
            for (int i = 0; i < n; ++i) {
                std::string name;
                switch (rng() % 3) {
                    case 0: name = kStaticNames[rng() % std::size(kStaticNames)]; break;
                    case 1: name = custom[rng() % custom.size()]; break;
                    default: name = "x-" + std::to_string(rng() % 50); break;
                }
                const bool reuse = !fields.empty() && rng() % 4 == 0;
                fields.emplace_back(name, reuse ? fields.back().second
                                                : random_value(rng() % 8 == 0 ? 600 : 40,
                                                               rng() % 10 == 0));
            }
            const Bytes block = deflater.block(fields);
            INFO("start " << start << " round " << round);
            REQUIRE(decode_ok(d, block) == fields);
            REQUIRE(d.table_size() == deflater.table_size());
            REQUIRE(d.table_size() <= 4096);
        }
        CHECK(d.heap_bytes() > 0);
    }
}

TEST_CASE("hpack encoder output is read back by nghttp2's inflater", "[hpack]") {
    SECTION("every static name, with an empty value, a static value and another value") {
        Fields fields;
        for (const char* name : kStaticNames) {
            fields.emplace_back(name, "");
            fields.emplace_back(name, "some value 123");
        }
        fields.emplace_back(":method", "GET");
        fields.emplace_back(":method", "POST");
        fields.emplace_back(":path", "/index.html");
        fields.emplace_back(":scheme", "https");
        fields.emplace_back("accept-encoding", "gzip, deflate");
        fields.emplace_back(":status", "404");
        Fields back;
        REQUIRE(inflate(encode(fields), back));
        CHECK(back == fields);
    }
    SECTION("a field is indexed once, then sent as its index; static names need no name string") {
        hpack::Encoder e;
        std::uint8_t out[64];
        REQUIRE(e.encode(out, 59, "vary", "a") == 3);
        CHECK(out[0] == (0x40 | 59));  // literal with incremental indexing, name index 59
        CHECK(out[1] == 0x01);
        CHECK(out[2] == 'a');  // raw: 'a' takes a byte either way
        CHECK(e.table_size() == 4 + 1 + 32);
        REQUIRE(e.encode(out, 59, "vary", "a") == 1);
        CHECK(out[0] == 0x80 + 62);  // the newest dynamic entry
        REQUIRE(e.encode(out, 34, "etag", "\x01") == 3);
        CHECK(out[0] == (0x40 | 34));
        CHECK(out[1] == 0x01);  // raw: the Huffman code of 0x01 is longer
        CHECK(out[2] == 0x01);
        REQUIRE(e.encode(out, 59, "vary", "a") == 1);
        CHECK(out[0] == 0x80 + 63);  // one entry newer since
        REQUIRE(e.encode(out, 0, "x-a", "b") == 7);
        CHECK(out[0] == 0x40);  // a literal name
        CHECK(out[1] == 3);
    }
    SECTION("Set-Cookie and fields larger than half the table are never indexed") {
        hpack::Encoder e;
        std::uint8_t out[512];
        for (int i = 0; i < 2; ++i) {
            REQUIRE(e.encode(out, hpack::kSetCookieIndex, "set-cookie", "id=1") == 6);
            CHECK(out[0] == 0x0f);  // literal without indexing, name index 55
            CHECK(out[1] == hpack::kSetCookieIndex - 15);
            const std::string big(hpack::Encoder::kMaxSize / 2 - 32 - 6 + 1, 'v');
            REQUIRE(e.encode(out, 0, "x-big1", big) > big.size() / 2);
            CHECK(out[0] == 0x00);
        }
        CHECK(e.table_size() == 0);
        CHECK(e.heap_bytes() == 0);
    }
    SECTION("literal names, empty and long values, every byte value") {
        std::string every;
        for (int c = 0; c < 256; ++c) {
            every += static_cast<char>(c);
        }
        Fields fields = {{"x-empty", ""},
                         {"x-long", std::string(20000, 'z')},
                         {"x-long-raw", std::string(3000, '\xff')},
                         {"x-every-byte", every},
                         {"", "empty name"},
                         {std::string(200, 'n'), "long name"}};
        for (int c = 0; c < 256; ++c) {
            fields.emplace_back("x-byte", std::string(1, static_cast<char>(c)));
            fields.emplace_back(std::string(1, static_cast<char>(c)), "x");
        }
        const Bytes block = encode(fields);
        Fields back;
        REQUIRE(inflate(block, back));
        CHECK(back == fields);
        hpack::Decoder d(4096);
        CHECK(decode_ok(d, block) == fields);
    }
}

TEST_CASE("hpack::Encoder keeps nghttp2's inflater and our Decoder in step across blocks, evictions and size updates",
          "[hpack]") {
    std::mt19937 rng(20261127);
    const std::vector<std::string> names = {"date", "content-type", "server", "x-request-id", "cache-control",
                                            "set-cookie", "etag", "x-a"};
    const std::vector<std::string> values = {"", "1", "text/plain", "Fri, 27 Nov 2026 09:30:00 GMT",
                                             std::string(100, 'v'), std::string(300, 'w'), "w/\"x\""};
    // Peer SETTINGS_HEADER_TABLE_SIZE changes at some blocks: down, to 0, up again.
    const std::map<int, std::uint32_t> settings = {{40, 300}, {80, 0}, {120, 4096}, {160, 100}, {161, 50}, {200, 4096}};
    hpack::Encoder encoder;
    hpack::Decoder decoder(4096);
    nghttp2_hd_inflater* inf = nullptr;
    REQUIRE(nghttp2_hd_inflate_new(&inf) == 0);
    std::uint32_t smallest = 4096;
    for (int b = 0; b < 240; ++b) {
        if (const auto it = settings.find(b); it != settings.end()) {
            encoder.peer_table_size(it->second);
            REQUIRE(nghttp2_hd_inflate_change_table_size(inf, it->second) == 0);
            smallest = std::min(smallest, it->second);
        }
        Fields fields;
        const int n = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < n; ++i) {
            fields.emplace_back(names[rng() % names.size()], values[rng() % values.size()]);
        }
        const Bytes block = encode(fields, encoder);
        INFO("block " << b);
        CHECK(decode_ok(decoder, block) == fields);
        Fields back;
        REQUIRE(inflate(inf, block, back));
        CHECK(back == fields);
        CHECK(encoder.table_size() <= std::min(hpack::Encoder::kMaxSize, smallest));
        CHECK(encoder.heap_bytes() <= hpack::Encoder::kMaxSize + hpack::Encoder::kMaxSize / 32 * 12 + 40);
    }
    nghttp2_hd_inflate_del(inf);
}

TEST_CASE("hpack::encode_status indexes static codes and sends others literally", "[hpack]") {
    for (int status = 100; status <= 999; ++status) {
        std::uint8_t out[5];
        const std::size_t n = hpack::encode_status(out, status);
        REQUIRE(n <= 5);
        const Bytes block(out, out + n);
        Fields back;
        REQUIRE(inflate(block, back));
        REQUIRE(back == Fields{{":status", std::to_string(status)}});
        const bool indexed =
            status == 200 || status == 204 || status == 206 || status == 304 || status == 400 ||
            status == 404 || status == 500;
        CHECK((n == 1) == indexed);
        if (!indexed) {
            CHECK(out[0] == 0x08);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed blocks: each case is caught by one check.

TEST_CASE("hpack::Decoder rejects an integer beyond 2^32 - 1", "[hpack]") {
    // 2^32 + 2 would be index 2 if it were truncated to 32 bits.
    Bytes block;
    put_int(block, 0x80, 7, (std::uint64_t{1} << 32) + 2);
    CHECK(decode_status(block) == hpack::Status::Error);
    Bytes small;
    put_int(small, 0x20, 5, 4096);
    CHECK(decode_status(small) == hpack::Status::Ok);
}

TEST_CASE("hpack::Decoder rejects an integer with excessive continuation bytes", "[hpack]") {
    // Name index 15 (accept-charset) as 0x0f and five continuation bytes adding 0 (enough for
    // any 32-bit value), then six (one too many); the value is "".
    CHECK(decode_status(bytes({0x0f, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x0f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00})) ==
          hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects a truncated integer", "[hpack]") {
    CHECK(decode_status(bytes({0xff})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0xff, 0x80})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x0f})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects index 0", "[hpack]") {
    CHECK(decode_status(bytes({0x80})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects an index beyond the static and dynamic tables", "[hpack]") {
    CHECK(decode_status(bytes({0x80 | 61})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x80 | 62})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x40 | 62, 0x00})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x0f, 62 - 15, 0x00})) == hpack::Status::Error);
    hpack::Decoder d(4096);
    Bytes block = bytes({0x40});
    put_string(block, "x-a");
    put_string(block, "1");
    block.push_back(0x80 | 62);
    CHECK(decode_ok(d, block) == Fields{{"x-a", "1"}, {"x-a", "1"}});
    CHECK(decode_ok(d, bytes({0x80 | 62})) == Fields{{"x-a", "1"}});
    Collect sink;
    CHECK(decode(d, bytes({0x80 | 63}), sink) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects a string longer than the rest of the block", "[hpack]") {
    CHECK(decode_status(bytes({0x00, 0x01, 'a', 0x02, 'b', 'c'})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x00, 0x01, 'a', 0x03, 'b', 'c'})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x00, 0x05, 'a'})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x00, 0x01, 'a'})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects Huffman padding longer than 7 bits", "[hpack]") {
    // 'a' is 00011: then 3 bits of padding are fine, 11 are not.
    CHECK(decode_status(bytes({0x00, 0x01, 'x', 0x81, 0x1f})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x00, 0x01, 'x', 0x82, 0x1f, 0xff})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x00, 0x01, 'x', 0x81, 0xff})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects Huffman padding that is not all ones", "[hpack]") {
    CHECK(decode_status(bytes({0x00, 0x01, 'x', 0x81, 0x18})) == hpack::Status::Error);
    CHECK(decode_status(bytes({0x00, 0x01, 'x', 0x81, 0x1e})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects a table size update above max_size", "[hpack]") {
    Bytes block;
    put_int(block, 0x20, 5, 4096);
    block.push_back(0x82);
    CHECK(decode_status(block, 4096) == hpack::Status::Ok);
    CHECK(decode_status(block, 4095) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects a table size update after a field", "[hpack]") {
    CHECK(decode_status(bytes({0x20, 0x82})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x82, 0x20})) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder rejects a third table size update in a block", "[hpack]") {
    CHECK(decode_status(bytes({0x20, 0x3f, 0xe1, 0x1f, 0x82})) == hpack::Status::Ok);
    CHECK(decode_status(bytes({0x20, 0x20, 0x20, 0x82})) == hpack::Status::Error);
}

// ---------------------------------------------------------------------------------------------
// Table behaviour

TEST_CASE("hpack::Decoder empties the table for an entry larger than it, without error",
          "[hpack]") {
    hpack::Decoder d(100);
    Bytes first = bytes({0x40});
    put_string(first, "x-a");
    put_string(first, "1");
    CHECK(decode_ok(d, first) == Fields{{"x-a", "1"}});
    CHECK(d.table_size() == 36);
    Bytes big = bytes({0x40});
    put_string(big, "x-big");
    put_string(big, std::string(64, 'v'));
    CHECK(decode_ok(d, big) == Fields{{"x-big", std::string(64, 'v')}});
    CHECK(d.table_size() == 0);
    Collect sink;
    CHECK(decode(d, bytes({0x80 | 62}), sink) == hpack::Status::Error);
}

TEST_CASE("hpack::Decoder allocates its table on the first insertion only", "[hpack]") {
    hpack::Decoder d(4096);
    CHECK(d.heap_bytes() == 0);
    Deflater deflater(4096);
    const Fields fields = {{":method", "GET"}, {":path", "/a/b?c=d"}, {"user-agent", "test agent"}};
    CHECK(decode_ok(d, deflater.block(fields, NGHTTP2_NV_FLAG_NO_INDEX)) == fields);
    CHECK(decode_ok(d, bytes({0x3f, 0xe1, 0x1f})).empty());
    CHECK(d.heap_bytes() == 0);
    CHECK(decode_ok(d, deflater.block(fields)) == fields);
    CHECK(d.heap_bytes() > 0);
    CHECK(d.heap_bytes() <= 4096 + 4096 / 32 * 12);
}

TEST_CASE("hpack::Decoder keeps its table and its memory within max_size", "[hpack]") {
    std::mt19937 rng(42);
    for (std::uint32_t max_size : {0u, 31u, 32u, 64u, 256u, 1000u}) {
        hpack::Decoder d(max_size);
        for (int i = 0; i < 500; ++i) {
            Bytes block = bytes({0x40});
            const std::string name = "n" + std::to_string(i);
            const std::string value(rng() % 90, 'v');
            put_string(block, name);
            put_string(block, value);
            block.push_back(0x80 | 62);
            INFO("max_size " << max_size << " insertion " << i);
            const bool fits = name.size() + value.size() + 32 <= max_size;
            Collect sink;
            REQUIRE(decode(d, block, sink) == (fits ? hpack::Status::Ok : hpack::Status::Error));
            if (fits) {
                REQUIRE(sink.fields == Fields{{name, value}, {name, value}});
            }
            REQUIRE(d.table_size() <= max_size);
            // Names and values, 12 bytes per entry, and the rings' bookkeeping (40 bytes).
            REQUIRE(d.heap_bytes() <= max_size + max_size / 32 * 12 + 40);
        }
    }
}

TEST_CASE("hpack::Decoder keeps a dynamic name that its own insertion evicts (RFC 7541 §4.4)",
          "[hpack]") {
    SECTION("the referenced entry is evicted") {
        hpack::Decoder d(100);
        Bytes first = bytes({0x40});
        put_string(first, "x-first-name");
        put_string(first, "1");
        decode_ok(d, first);
        Bytes second = bytes({0x40 | 62});
        put_string(second, std::string(50, 'v'));
        const Fields expected = {{"x-first-name", std::string(50, 'v')}};
        CHECK(decode_ok(d, second) == expected);
        CHECK(d.table_size() == 12 + 50 + 32);
        CHECK(decode_ok(d, bytes({0x80 | 62})) == expected);
    }
    SECTION("the table grows while the name is read from it") {
        hpack::Decoder d(4096);
        Bytes first = bytes({0x40});
        put_string(first, "x-first-name-of-some-length");
        put_string(first, "1");
        decode_ok(d, first);
        Bytes second = bytes({0x40 | 62});
        put_string(second, std::string(1000, 'v'));
        const Fields expected = {{"x-first-name-of-some-length", std::string(1000, 'v')}};
        CHECK(decode_ok(d, second) == expected);
        CHECK(decode_ok(d, bytes({0x80 | 62})) == expected);
        CHECK(decode_ok(d, bytes({0x80 | 63})) == Fields{{"x-first-name-of-some-length", "1"}});
    }
}

TEST_CASE("hpack::Decoder updates the table after the sink asked to stop", "[hpack]") {
    hpack::Decoder d(4096);
    Bytes block = bytes({0x82});
    for (const char* name : {"x-a", "x-b"}) {
        block.push_back(0x40);
        put_string(block, name);
        put_string(block, "v");
    }
    Collect sink;
    sink.stop_after = 1;
    REQUIRE(decode(d, block, sink) == hpack::Status::Ok);
    CHECK(sink.fields == Fields{{":method", "GET"}});
    CHECK(d.table_size() == 2 * 36);
    Collect again;
    REQUIRE(decode(d, bytes({0x80 | 62, 0x80 | 63}), again) == hpack::Status::Ok);
    CHECK(again.fields == Fields{{"x-b", "v"}, {"x-a", "v"}});
    // Inserted while no sink was listening: never accepted, so not vetted.
    CHECK(again.origins == std::vector<std::tuple<bool, bool, bool>>{{false, false, false}, {false, false, false}});
}

TEST_CASE("hpack::Decoder vets exactly the entries a sink accepted when they were inserted", "[hpack]") {
    hpack::Decoder d(4096);
    Bytes block;
    for (const char* name : {"x-a", "x-b", "x-c"}) {
        block.push_back(0x40);
        put_string(block, name);
        put_string(block, "v");
    }
    Collect first;
    first.stop_after = 2;  // accepts x-a, refuses x-b; x-c is inserted without a call
    REQUIRE(decode(d, block, first) == hpack::Status::Ok);
    CHECK(first.fields == Fields{{"x-a", "v"}, {"x-b", "v"}});
    Collect sink;
    // 62 is the newest (x-c), 64 the oldest (x-a); then a literal that names x-a's entry for
    // its name only: a new field, not vetted.
    Bytes next = bytes({0x80 | 62, 0x80 | 63, 0x80 | 64, 0x00 | 15, 64 - 15});
    put_string(next, "w");
    REQUIRE(decode(d, next, sink) == hpack::Status::Ok);
    CHECK(sink.fields == Fields{{"x-c", "v"}, {"x-b", "v"}, {"x-a", "v"}, {"x-a", "w"}});
    CHECK(sink.origins == std::vector<std::tuple<bool, bool, bool>>{
                              {false, false, false}, {false, false, false}, {false, false, true}, {false, false, false}});
}

TEST_CASE("hpack::Decoder says which views point into the static table", "[hpack]") {
    hpack::Decoder d(4096);
    Bytes block = bytes({0x82, 0x04});
    put_string(block, "/x");
    block.push_back(0x40);
    put_string(block, "x-a");
    put_string(block, "1");
    block.push_back(0x80 | 62);
    Collect sink;
    REQUIRE(decode(d, block, sink) == hpack::Status::Ok);
    // The sink accepted x-a when it was inserted: the indexed reference is vetted.
    CHECK(sink.origins == std::vector<std::tuple<bool, bool, bool>>{
                              {true, true, false}, {true, false, false}, {false, false, false}, {false, false, true}});
}

TEST_CASE("hpack::regular_static_name finds the static names in any case and nothing else", "[hpack]") {
    const std::vector<std::pair<std::string, int>> names{
        {"accept-charset", 15}, {"accept-encoding", 16}, {"accept-language", 17}, {"accept-ranges", 18},
        {"accept", 19}, {"access-control-allow-origin", 20}, {"age", 21}, {"allow", 22},
        {"authorization", 23}, {"cache-control", 24}, {"content-disposition", 25},
        {"content-encoding", 26}, {"content-language", 27}, {"content-length", 28},
        {"content-location", 29}, {"content-range", 30}, {"content-type", 31}, {"cookie", 32},
        {"date", 33}, {"etag", 34}, {"expect", 35}, {"expires", 36}, {"from", 37}, {"host", 38},
        {"if-match", 39}, {"if-modified-since", 40}, {"if-none-match", 41}, {"if-range", 42},
        {"if-unmodified-since", 43}, {"last-modified", 44}, {"link", 45}, {"location", 46},
        {"max-forwards", 47}, {"proxy-authenticate", 48}, {"proxy-authorization", 49}, {"range", 50},
        {"referer", 51}, {"refresh", 52}, {"retry-after", 53}, {"server", 54}, {"set-cookie", 55},
        {"strict-transport-security", 56}, {"transfer-encoding", 57}, {"user-agent", 58}, {"vary", 59},
        {"via", 60}, {"www-authenticate", 61}};
    const auto reference = [&names](std::string s) {
        for (char& ch : s) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        const auto it = std::find_if(names.begin(), names.end(), [&s](const auto& e) { return e.first == s; });
        return it == names.end() ? 0 : it->second;
    };
    for (const auto& [name, index] : names) {
        INFO(name);
        std::string upper = name;
        std::string mixed = name;
        for (std::size_t i = 0; i < name.size(); ++i) {
            upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
            if (i % 2 == 0) {
                mixed[i] = upper[i];
            }
        }
        CHECK(hpack::regular_static_name(name) == index);
        CHECK(hpack::regular_static_name(upper) == index);
        CHECK(hpack::regular_static_name(mixed) == index);
        // Any other byte at any position (but the same letter in the other case): whatever name
        // that makes, compared in lower case.
        for (std::size_t at = 0; at < name.size(); ++at) {
            for (int c = 0; c < 256; ++c) {
                std::string other = name;
                other[at] = static_cast<char>(c);
                if (std::tolower(c) == name[at]) {
                    continue;
                }
                INFO("byte " << c << " at " << at);
                CHECK(hpack::regular_static_name(other) == reference(other));
            }
        }
    }
    for (const char* other : {"", ":authority", ":path", ":status", ":method", "x-date", "dat", "datee", "content-typ",
                              "access-control-allow-origin2"}) {
        CHECK(hpack::regular_static_name(other) == 0);
    }
}

TEST_CASE("http2::lower_name lowers and checks every byte at every position of short and long names", "[hpack]") {
    blitz::Arena arena;
    const std::string base = "Content-Length-X-Forwarded-9";
    for (std::size_t len = 1; len <= base.size(); ++len) {
        const std::string lowered = [&] {
            std::string l = base.substr(0, len);
            for (char& c : l) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            return l;
        }();
        CHECK(blitz::http2::lower_name(arena, base.substr(0, len)) == lowered);
        // Already lower case: the name itself comes back, not a copy.
        CHECK(blitz::http2::lower_name(arena, lowered).data() == lowered.data());
        for (std::size_t at = 0; at < len; ++at) {
            for (int c = 0; c < 256; ++c) {
                std::string name = base.substr(0, len);
                name[at] = static_cast<char>(c);
                std::string want = lowered;
                want[at] = static_cast<char>(std::tolower(c));
                INFO("length " << len << ", byte " << c << " at " << at);
                if (blitz::http::is_tchar(static_cast<char>(c))) {
                    CHECK(blitz::http2::lower_name(arena, name) == want);
                } else {
                    CHECK(blitz::http2::lower_name(arena, name).empty());
                }
            }
            arena.reset();
        }
    }
}

TEST_CASE("http2::connection_specific names exactly RFC 9113's connection-specific fields", "[hpack]") {
    for (const char* name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}) {
        CHECK(blitz::http2::connection_specific(name));
    }
    for (const char* name : {"", "t", "tf", "trailer", "connections", "keep-alivf", "content-type", "upgrade-insecure-requests",
                             "transfer-encodings", "proxy-connectioN"}) {
        CHECK_FALSE(blitz::http2::connection_specific(name));
    }
}

TEST_CASE("http2::valid_value finds NUL, CR and LF at every position of short and long values", "[hpack]") {
    for (std::size_t len = 1; len <= 40; ++len) {
        std::string v(len, 'a');
        for (std::size_t i = 0; i < len; ++i) {
            v[i] = static_cast<char>(0x80 + i);  // high bytes are fine
        }
        CHECK(blitz::http2::valid_value(v));
        for (std::size_t at = 0; at < len; ++at) {
            for (const char bad : {'\0', '\r', '\n'}) {
                std::string w = v;
                w[at] = bad;
                INFO("length " << len << ", byte " << static_cast<int>(bad) << " at " << at);
                CHECK_FALSE(blitz::http2::valid_value(w));
            }
        }
    }
}

TEST_CASE("hpack encoder repeats, changes and bounds the values it keeps encoded", "[hpack]") {
    // The per-thread cache of each static name's last value: a repeat must encode exactly as the
    // first time, a changed value (same length, other length, 48 and 49 bytes, empty) as itself.
    const std::string date1 = "Fri, 27 Nov 2026 03:20:00 GMT";
    const std::string date2 = "Fri, 27 Nov 2026 03:20:01 GMT";
    const Fields sequence = {
        {"date", date1}, {"date", date1}, {"date", date2}, {"date", date1}, {"date", ""}, {"date", ""},
        {"server", std::string(48, 'x')}, {"server", std::string(48, 'x')}, {"server", std::string(49, 'x')},
        {"server", std::string(49, 'x')}, {"server", std::string(48, 'y')}, {"content-type", "text/plain"},
        {"content-type", "text/html"}, {"content-type", "text/plain"}, {"x-custom", "text/plain"},
    };
    Bytes first_date;
    for (const auto& field : sequence) {
        const Bytes block = encode({field});
        Fields out;
        REQUIRE(inflate(block, out));
        REQUIRE(out.size() == 1);
        CHECK(out[0] == field);
        if (field.second == date1) {
            if (first_date.empty()) {
                first_date = block;
            }
            CHECK(block == first_date);
        }
    }
}
