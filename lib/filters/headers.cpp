#include <blitz/filters.hpp>


namespace blitz::filters {

Headers::Headers(HeaderEdits request, HeaderEdits response)
    : request_(std::move(request)), response_(std::move(response)) {}

Flow Headers::on_request_headers(Exchange& ex) {
    if (request_.empty()) {
        return Flow::Continue;
    }
    // Request fields are views into the receive buffer; the edited list lives in the arena.
    Request& req = ex.mutable_request();
    const std::size_t cap = req.headers.size() + request_.add.size() + request_.set.size();
    auto* fields = static_cast<Header*>(ex.arena().allocate(sizeof(Header) * (cap + 1), alignof(Header)));
    std::size_t n = 0;
    for (const Header& h : req.headers) {
        bool drop = false;
        for (const std::string& name : request_.remove) {
            drop = drop || iequals(h.name, name);
        }
        for (const auto& kv : request_.set) {
            drop = drop || iequals(h.name, kv.first);
        }
        if (!drop) {
            fields[n++] = h;
        }
    }
    for (const auto& kv : request_.set) {
        fields[n++] = Header{kv.first, kv.second};
    }
    for (const auto& kv : request_.add) {
        fields[n++] = Header{kv.first, kv.second};
    }
    req.headers = blitz::Headers({fields, n});
    return Flow::Continue;
}

Flow Headers::on_response_headers(Exchange& ex) {
    Response& res = ex.response();
    for (const std::string& name : response_.remove) {
        res.remove_header(name);
    }
    for (const auto& kv : response_.set) {
        res.set_header(kv.first, kv.second);
    }
    for (const auto& kv : response_.add) {
        res.add_header(kv.first, kv.second);
    }
    return Flow::Continue;
}

}  // namespace blitz::filters
