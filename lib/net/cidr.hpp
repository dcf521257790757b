#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include <blitz/result.hpp>

namespace blitz::net {

/// A set of IPv4 and IPv6 address blocks: "10.0.0.0/8", "2001:db8::/32", or single addresses
/// ("192.0.2.7", "::1"), e.g. a listener's trusted proxies.
///
/// Addresses are numeric only (inet_pton: dotted-quad IPv4 without leading zeros, RFC 4291
/// IPv6 text without a zone). A prefix length is decimal, 0..32 for IPv4 and 0..128 for IPv6;
/// host bits below it are ignored ("192.168.1.1/16" is 192.168.0.0/16). An IPv4-mapped IPv6
/// address (::ffff:192.0.2.7, what a dual-stack socket reports for IPv4 peers) is the same
/// address as its IPv4 form: it matches IPv4 blocks, and an IPv4 address matches IPv6 blocks
/// that cover its mapped form (so "::/0" holds every address).
///
/// Thread: built at config time; contains() is const and may run on any thread at once.
/// Lifetime: value type.
class CidrSet {
 public:
    /// Parses every entry; the error names the first malformed one and why.
    static Result<CidrSet, std::string> parse(std::span<const std::string> blocks);

    /// Adds one block; on error the set is unchanged and the text says what is wrong with it.
    Result<void, std::string> add(std::string_view block);

    /// Whether an AF_INET or AF_INET6 address lies in a block; false for other families and
    /// null.
    bool contains(const sockaddr* address) const noexcept;
    /// Whether a numeric address given as text ("192.0.2.7", "2001:db8::1", no brackets, no
    /// port) lies in a block; false when the text is not an address.
    bool contains(std::string_view ip) const noexcept;

    bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
    /// Number of blocks.
    std::size_t size() const noexcept { return v4_.size() + v6_.size(); }

 private:
    struct Block4 {
        std::uint32_t network = 0;  // host order, host bits cleared
        std::uint32_t mask = 0;
    };
    struct Block6 {
        std::uint64_t network[2] = {0, 0};  // high and low 64 bits, host order
        std::uint64_t mask[2] = {0, 0};
    };

    bool in_v4_blocks(std::uint32_t address) const noexcept;
    bool in_v6_blocks(const std::uint8_t* bytes) const noexcept;
    // Either family's blocks, through the IPv4-mapped form.
    bool contains_v4(std::uint32_t address) const noexcept;
    bool contains_v6(const std::uint8_t* bytes) const noexcept;

    std::vector<Block4> v4_;
    std::vector<Block6> v6_;
};

}  // namespace blitz::net
