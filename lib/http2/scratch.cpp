#include "http2/scratch.hpp"

#include <algorithm>
#include <vector>

namespace blitz::http2 {

char* Scratch::grow(std::size_t n) {
    // Frees every scratch buffer of the thread when it ends.
    struct Owner {
        std::vector<Scratch*> scratches;
        ~Owner() {
            for (Scratch* s : scratches) {
                delete[] s->buf_;
                s->buf_ = nullptr;
                s->cap_ = 0;
            }
        }
    };
    thread_local Owner owner;
    if (buf_ == nullptr) {
        owner.scratches.push_back(this);
    }
    const std::size_t cap = std::max({n, cap_ * 2, std::size_t{256}});
    char* const grown = new char[cap];
    delete[] buf_;
    buf_ = grown;
    cap_ = cap;
    return grown;
}

}  // namespace blitz::http2
