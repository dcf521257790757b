#include "net/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace blitz::net {

namespace {

// Longer than any numeric address text (INET6_ADDRSTRLEN counts the NUL).
constexpr std::size_t kMaxAddressText = INET6_ADDRSTRLEN;

// An address in either family, as parsed from text.
struct Parsed {
    int family = 0;
    std::uint8_t bytes[16] = {};
};

// inet_pton() needs a NUL-terminated string and stops at an embedded NUL, which a JSON
// "\u0000" escape can put inside config text; such text is no address.
bool parse_ip(std::string_view text, Parsed& out) noexcept {
    char buf[kMaxAddressText];
    if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    if (inet_pton(AF_INET, buf, out.bytes) == 1) {
        out.family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out.bytes) == 1) {
        out.family = AF_INET6;
        return true;
    }
    return false;
}

std::uint32_t load32(const std::uint8_t* p) noexcept {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}

std::uint64_t load64(const std::uint8_t* p) noexcept {
    return static_cast<std::uint64_t>(load32(p)) << 32 | load32(p + 4);
}

// RFC 4291 §2.5.5.2: ::ffff:a.b.c.d carries the IPv4 address a.b.c.d.
bool is_v4_mapped(const std::uint8_t* v6) noexcept {
    static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(v6, kPrefix, sizeof kPrefix) == 0;
}

void map_v4(std::uint32_t v4, std::uint8_t* v6) noexcept {
    std::memset(v6, 0, 10);
    v6[10] = v6[11] = 0xff;
    v6[12] = static_cast<std::uint8_t>(v4 >> 24);
    v6[13] = static_cast<std::uint8_t>(v4 >> 16);
    v6[14] = static_cast<std::uint8_t>(v4 >> 8);
    v6[15] = static_cast<std::uint8_t>(v4);
}

// The top `bits` bits of a 64-bit word set (0..64).
std::uint64_t high_bits(unsigned bits) noexcept {
    return bits == 0 ? 0 : ~std::uint64_t{0} << (64 - bits);
}

std::string describe_error(std::string_view block, std::string_view why) {
    std::string s = "invalid address block \"";
    s.append(block);
    s.append("\": ");
    s.append(why);
    return s;
}

}  // namespace

Result<CidrSet, std::string> CidrSet::parse(std::span<const std::string> blocks) {
    CidrSet set;
    for (const std::string& block : blocks) {
        if (Result<void, std::string> r = set.add(block); !r) {
            return fail(r.error());
        }
    }
    return set;
}

Result<void, std::string> CidrSet::add(std::string_view block) {
    const std::size_t slash = block.find('/');
    const std::string_view address = block.substr(0, slash);
    Parsed ip;
    if (!parse_ip(address, ip)) {
        return fail(describe_error(block, "not a numeric IPv4 or IPv6 address"));
    }
    const unsigned max_prefix = ip.family == AF_INET ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view digits = block.substr(slash + 1);
        if (digits.empty() || digits.size() > 3) {
            return fail(describe_error(block, "the prefix length must be a decimal number"));
        }
        prefix = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') {
                return fail(describe_error(block, "the prefix length must be a decimal number"));
            }
            prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        }
        if (prefix > max_prefix) {
            return fail(describe_error(block, ip.family == AF_INET
                                                  ? "an IPv4 prefix length is at most 32"
                                                  : "an IPv6 prefix length is at most 128"));
        }
    }
    if (ip.family == AF_INET) {
        const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
        v4_.push_back(Block4{load32(ip.bytes) & mask, mask});
    } else {
        Block6 b;
        b.mask[0] = high_bits(prefix < 64 ? prefix : 64);
        b.mask[1] = high_bits(prefix > 64 ? prefix - 64 : 0);
        b.network[0] = load64(ip.bytes) & b.mask[0];
        b.network[1] = load64(ip.bytes + 8) & b.mask[1];
        v6_.push_back(b);
    }
    return {};
}

bool CidrSet::in_v4_blocks(std::uint32_t address) const noexcept {
    for (const Block4& b : v4_) {
        if ((address & b.mask) == b.network) {
            return true;
        }
    }
    return false;
}

bool CidrSet::in_v6_blocks(const std::uint8_t* bytes) const noexcept {
    const std::uint64_t high = load64(bytes);
    const std::uint64_t low = load64(bytes + 8);
    for (const Block6& b : v6_) {
        if ((high & b.mask[0]) == b.network[0] && (low & b.mask[1]) == b.network[1]) {
            return true;
        }
    }
    return false;
}

bool CidrSet::contains_v4(std::uint32_t address) const noexcept {
    if (in_v4_blocks(address)) {
        return true;
    }
    if (v6_.empty()) {
        return false;
    }
    std::uint8_t mapped[16];
    map_v4(address, mapped);
    return in_v6_blocks(mapped);
}

bool CidrSet::contains_v6(const std::uint8_t* bytes) const noexcept {
    return in_v6_blocks(bytes) || (is_v4_mapped(bytes) && in_v4_blocks(load32(bytes + 12)));
}

bool CidrSet::contains(const sockaddr* address) const noexcept {
    if (address == nullptr) {
        return false;
    }
    // Copied out rather than cast: `address` may point into a sockaddr_storage or a plain
    // sockaddr buffer of any alignment.
    if (address->sa_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, address, sizeof in);
        return contains_v4(ntohl(in.sin_addr.s_addr));
    }
    if (address->sa_family == AF_INET6) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, address, sizeof in6);
        return contains_v6(reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr));
    }
    return false;
}

bool CidrSet::contains(std::string_view ip) const noexcept {
    Parsed parsed;
    if (!parse_ip(ip, parsed)) {
        return false;
    }
    return parsed.family == AF_INET ? contains_v4(load32(parsed.bytes)) : contains_v6(parsed.bytes);
}

}  // namespace blitz::net
