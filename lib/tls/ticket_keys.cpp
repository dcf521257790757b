#include "tls/ticket_keys.hpp"

#include <cstring>

namespace blitz::tls {

namespace {

// HMAC-SHA256(secret, label || binding): one PRF output per label, as in HKDF-Expand's first
// block (RFC 5869 §2.3), with labels that keep the three outputs independent.
bool derive(const std::array<std::uint8_t, 32>& secret, const char* label,
            const TicketKeys::Binding& binding, std::uint8_t* out, std::size_t out_len) {
    std::uint8_t input[64];
    const std::size_t label_len = std::strlen(label);
    std::memcpy(input, label, label_len);
    std::memcpy(input + label_len, binding.data(), binding.size());
    std::uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (HMAC(EVP_sha256(), secret.data(), 32, input, label_len + binding.size(), md, &md_len) ==
            nullptr ||
        md_len < out_len) {
        return false;
    }
    std::memcpy(out, md, out_len);
    OPENSSL_cleanse(md, sizeof md);
    return true;
}

}  // namespace

TicketKeys::~TicketKeys() {
    wipe(current_);
    wipe(previous_);
}

void TicketKeys::wipe(Generation& g) noexcept {
    OPENSSL_cleanse(g.secret.data(), g.secret.size());
    if (!g.keys.empty()) {
        OPENSSL_cleanse(g.keys.data(), g.keys.size() * sizeof(compat::TicketKey));
    }
    g.valid = false;
}

bool TicketKeys::fill(Generation& g) noexcept {
    wipe(g);
    if (RAND_bytes(g.secret.data(), g.secret.size()) != 1) {
        return false;
    }
    g.keys.resize(bindings_.size());
    for (std::size_t i = 0; i < bindings_.size(); ++i) {
        compat::TicketKey& k = g.keys[i];
        if (!derive(g.secret, "blitz ticket name", bindings_[i], k.name, sizeof k.name) ||
            !derive(g.secret, "blitz ticket aes", bindings_[i], k.aes, sizeof k.aes) ||
            !derive(g.secret, "blitz ticket mac", bindings_[i], k.mac, sizeof k.mac)) {
            wipe(g);
            return false;
        }
    }
    g.valid = true;
    return true;
}

bool TicketKeys::init(std::chrono::seconds period, std::vector<Binding> bindings) noexcept {
    std::lock_guard lock(mutex_);
    period_ = period.count() > 0 ? period : std::chrono::seconds(1);
    bindings_ = std::move(bindings);
    start_ = Clock::now();
    epoch_ = 0;
    current_.keys.reserve(bindings_.size());
    previous_.keys.reserve(bindings_.size());
    wipe(previous_);
    return fill(current_);
}

void TicketKeys::rotate_locked() noexcept {
    const auto elapsed = Clock::now() + skew_ - start_;
    const std::int64_t epoch = elapsed / period_;
    if (epoch == epoch_ && current_.valid) {
        return;
    }
    if (epoch == epoch_ + 1 && current_.valid) {
        std::swap(previous_, current_);
    } else if (epoch != epoch_) {
        // Two periods or more passed without a ticket operation: the last secret is too old to
        // accept, and no ticket was issued under the one in between.
        wipe(previous_);
    }
    epoch_ = epoch;
    fill(current_);
}

bool TicketKeys::encrypt_key(std::size_t host, compat::TicketKey& key) noexcept {
    std::lock_guard lock(mutex_);
    rotate_locked();
    if (!current_.valid || host >= current_.keys.size()) {
        return false;
    }
    key = current_.keys[host];
    return true;
}

int TicketKeys::decrypt_key(std::size_t host, const std::uint8_t* name,
                            compat::TicketKey& key) noexcept {
    std::lock_guard lock(mutex_);
    rotate_locked();
    if (current_.valid && host < current_.keys.size() &&
        CRYPTO_memcmp(current_.keys[host].name, name, sizeof key.name) == 0) {
        key = current_.keys[host];
        return 1;
    }
    if (previous_.valid && host < previous_.keys.size() &&
        CRYPTO_memcmp(previous_.keys[host].name, name, sizeof key.name) == 0) {
        key = previous_.keys[host];
        return 2;
    }
    return 0;
}

void TicketKeys::advance_clock(std::chrono::seconds by) noexcept {
    std::lock_guard lock(mutex_);
    skew_ += by;
}

}  // namespace blitz::tls
