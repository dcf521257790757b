#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

/// HPACK (RFC 7541) for the server-side HTTP/2 codec: a decoder with a lazily allocated dynamic
/// table for request header blocks, and an encoder with a small dynamic table of its own for
/// response and trailer fields.
namespace blitz::http2::hpack {

/// Where a decoded field's bytes come from.
struct Origin {
    bool name_static = false;   ///< the name belongs to the HPACK static table
    bool value_static = false;  ///< so does the value
    /// The field is a dynamic-table entry that a sink of this decoder accepted (returned true
    /// for) when the entry was inserted: the same name and value, byte for byte. A sink whose
    /// checks of a field depend only on its bytes may skip them.
    bool vetted = false;
};

/// Receives decoded fields.
///
/// Thread: called on the decoding thread, from inside Decoder::decode(). Lifetime: name and
/// value are valid only during the call (they point into the input block, the dynamic table or
/// a per-thread scratch buffer), unless the origin says the bytes belong to the HPACK static
/// table, which lives for the program.
class FieldSink {
public:
    /// One field, in block order. Returning false stops delivery: decode() still processes the
    /// rest of the block (to keep the dynamic table in step with the encoder) but calls no sink
    /// again.
    virtual bool field(std::string_view name, std::string_view value, Origin origin) = 0;

protected:
    ~FieldSink() = default;
};

/// A dynamic table's rings of entries and bytes (hpack.cpp), allocated on its first insertion.
struct DynamicTable;

/// Outcome of Decoder::decode().
enum class Status : std::uint8_t {
    Ok,
    Error,  ///< COMPRESSION_ERROR (RFC 9113 §4.3): a connection error; the decoder is unusable.
};

/// HPACK decoder of one connection (RFC 7541 §3, §4, §6). The dynamic table is allocated on the
/// first insertion only (an idle connection that never indexed anything holds no table), and
/// grows to at most `max_size` bytes of names and values plus 12 bytes per entry, plus 40 bytes
/// of ring bookkeeping (64-bit).
///
/// Thread: owned by one connection, used by one thread at a time. Lifetime: the connection's;
/// nothing decode() hands to a sink outlives the sink call.
class Decoder {
public:
    /// `max_size` is what we advertise as SETTINGS_HEADER_TABLE_SIZE: the largest table the
    /// encoder may use, and the table size until the encoder sends a size update; below 2^31
    /// (the config allows up to 65,536).
    explicit Decoder(std::uint32_t max_size) noexcept;
    ~Decoder();
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;

    /// Decodes one complete header block (the concatenated HEADERS + CONTINUATION fragments),
    /// handing every field to `sink` in order until the sink returns false (see FieldSink).
    /// Returns Error on malformed input: an integer beyond 2^32-1, over-long or truncated; index
    /// 0 or beyond the tables; a truncated string; invalid Huffman (EOS decoded, padding longer
    /// than 7 bits or not all ones); a dynamic table size update above max_size, after a field,
    /// or a third one in the block. A field that cannot fit in the table is not an error: it
    /// empties the table (§4.4). Fields delivered before an Error are not taken back.
    Status decode(const std::uint8_t* block, std::size_t len, FieldSink& sink);

    /// Bytes the dynamic table holds as RFC 7541 §4.1 counts them (name + value + 32 per entry).
    std::uint32_t table_size() const noexcept { return size_; }

    /// Heap bytes the decoder holds now (0 until the first insertion).
    std::size_t heap_bytes() const noexcept;

private:
    bool insert(std::string_view name, std::string_view value);
    void evict_to(std::uint32_t limit) noexcept;

    std::unique_ptr<DynamicTable> table_;  // null until the first insertion
    std::uint32_t max_size_;        // SETTINGS_HEADER_TABLE_SIZE we advertise
    std::uint32_t limit_;           // table size the encoder chose (§4.2), <= max_size_
    std::uint32_t size_ = 0;        // §4.1 size of the entries held
};

/// Bytes Encoder::encode() may write at most for a field: the
/// representation byte, a second one for a name index beyond 14, and each string with its
/// length (a 7-bit prefix and at most ten more bytes for a 64-bit length).
///
/// Thread: any. Lifetime: stateless.
constexpr std::size_t max_field_bytes(std::string_view name, std::string_view value) noexcept {
    return 2 + 11 + name.size() + 11 + value.size();
}


/// Static-table indices of the names the server writes itself (RFC 7541 Appendix A).
inline constexpr std::uint8_t kContentLengthIndex = 28;
inline constexpr std::uint8_t kDateIndex = 33;
/// The static table's only connection-specific name (RFC 9113 §8.2.2).
inline constexpr std::uint8_t kTransferEncodingIndex = 57;
inline constexpr std::uint8_t kSetCookieIndex = 55;

/// The name of static entry `index` (1..61).
///
/// Thread: any. Lifetime: the program's.
std::string_view static_name(std::uint8_t index) noexcept;

/// The static-table index of `name` in any case (RFC 9110 §5.1: names are case-insensitive),
/// among the regular names (15..61: not the pseudo-fields); 0 if it is none of them.
///
/// Thread: any. Lifetime: stateless.
std::uint8_t regular_static_name(std::string_view name) noexcept;


/// HPACK encoder of one connection's response and trailer fields (RFC 7541 §2.3.2, §4), with a
/// small dynamic table: a field sent before goes as an index of one or two bytes. The table is
/// allocated on the first insertion and holds at most kMaxSize bytes as §4.1 counts them (less
/// when the peer's SETTINGS_HEADER_TABLE_SIZE is smaller); while it is at most what the peer's
/// decoder allows, its entries are the newest of the decoder's, so no size update is needed.
///
/// Thread: owned by one connection. Lifetime: the connection's. Every block encoded must be
/// sent, whole and in order: the peer's decoder follows the table through them.
class Encoder {
public:
    static constexpr std::uint32_t kMaxSize = 512;
    /// Bytes begin_block() writes at most.
    static constexpr std::size_t kMaxBlockPrefix = 6;

    Encoder() noexcept;
    ~Encoder();
    Encoder(const Encoder&) = delete;
    Encoder& operator=(const Encoder&) = delete;

    /// The peer's SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). Below what the peer's decoder
    /// last heard from us, it shrinks the table and the next block starts with a size update.
    void peer_table_size(std::uint32_t bytes) noexcept;
    /// Starts a header block at `out`: writes the size update owed, if any (§6.3); returns the
    /// bytes written (at most kMaxBlockPrefix).
    std::size_t begin_block(std::uint8_t* out) noexcept;
    /// Writes one field at `out` (room for max_field_bytes()) and returns the bytes written: an
    /// index when the table holds the field; else a literal (naming `static_name` when it is not
    /// 0), added to the table when it takes at most half of it and is not a Set-Cookie. `name` is
    /// in lower case (the static entry's when `static_name` is set); name and value are valid.
    std::size_t encode(std::uint8_t* out, std::uint8_t static_name, std::string_view name, std::string_view value);

    /// Bytes the table holds as RFC 7541 §4.1 counts them.
    std::uint32_t table_size() const noexcept { return size_; }
    /// Heap bytes the encoder holds now (0 until the first insertion).
    std::size_t heap_bytes() const noexcept;

private:
    static constexpr std::uint32_t kNoUpdate = 0xffffffff;

    void evict_to(std::uint32_t limit) noexcept;

    std::unique_ptr<DynamicTable> table_;  // null until the first insertion
    std::uint32_t decoder_max_ = 4096;     // the peer decoder's maximum as it knows it (§4.2)
    std::uint32_t limit_ = kMaxSize;       // our table's maximum, <= decoder_max_
    std::uint32_t size_ = 0;               // §4.1 size of the entries held
    std::uint32_t update_ = kNoUpdate;     // size update owed at the next block's start
};

/// Writes ":status" for a code in 100..999 at `out` (room: 5 bytes): indexed when the static
/// table has it (200, 204, 206, 304, 400, 404, 500), else a literal without indexing with name
/// index 8.
///
/// Thread: any. Lifetime: stateless.
std::size_t encode_status(std::uint8_t* out, int status) noexcept;

}  // namespace blitz::http2::hpack
