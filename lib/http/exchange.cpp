#include <blitz/exchange.hpp>

#include "http/exchange_driver.hpp"

namespace blitz {

Reactor& Exchange::reactor() const noexcept { return driver_->exchange_reactor(); }

std::string_view Exchange::client_address() const noexcept {
    return driver_->exchange_client_address();
}

const TlsInfo* Exchange::tls() const noexcept {
    return driver_->exchange_tls();
}

Flow Exchange::respond(int status, std::string_view body, std::string_view content_type) {
    return respond_static(status, arena_->copy(body), arena_->copy(content_type));
}

Flow Exchange::respond_static(int status, std::string_view body, std::string_view content_type) {
    responded_ = true;
    response_.clear();
    response_.set_status(status);
    response_.set_body(body);
    if (!body.empty() && !content_type.empty()) {
        response_.add_header("Content-Type", content_type);
    }
    return Flow::Respond;
}

void Exchange::resume() { driver_->exchange_resume(); }

bool Exchange::aborted() const noexcept { return driver_->exchange_aborted(); }

void Exchange::read_body(BodyReader reader) {
    body_reader_ = std::move(reader);
    driver_->exchange_read_body();
}

}  // namespace blitz
