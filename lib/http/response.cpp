#include <blitz/exchange.hpp>

#include <algorithm>
#include <cstring>

namespace blitz {

void Response::add_header(std::string_view name, std::string_view value) {
    if (count_ == capacity_) {
        // Grow inside the arena; the old array is simply abandoned (freed with the arena).
        std::uint16_t cap = capacity_ == 0 ? 8 : static_cast<std::uint16_t>(capacity_ * 2);
        auto* fields = static_cast<Header*>(arena_->allocate(sizeof(Header) * cap, alignof(Header)));
        if (count_ > 0) {
            std::memcpy(static_cast<void*>(fields), fields_, sizeof(Header) * count_);
        }
        fields_ = fields;
        capacity_ = cap;
    }
    fields_[count_++] = Header{name, value};
}

void Response::set_header(std::string_view name, std::string_view value) {
    remove_header(name);
    add_header(name, value);
}

void Response::remove_header(std::string_view name) noexcept {
    std::uint16_t out = 0;
    for (std::uint16_t i = 0; i < count_; ++i) {
        if (!iequals(fields_[i].name, name)) {
            fields_[out++] = fields_[i];
        }
    }
    count_ = out;
}

void Response::clear() noexcept {
    count_ = 0;
    status_ = 0;
    body_ = {};
}

}  // namespace blitz
