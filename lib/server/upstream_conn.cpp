#include "server/upstream_conn.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <openssl/ssl.h>

#include "server/reactor.hpp"
#include "server/tls_state.hpp"
#include "server/upstream_h2.hpp"

namespace blitz::server {

UpstreamConn::UpstreamConn(ReactorImpl& reactor) noexcept : reactor_(reactor) {
    timer_.fire = &UpstreamConn::on_timer;
    timer_.owner = this;
}

UpstreamConn::~UpstreamConn() {
    delete tls_;  // only when the reactor is torn down with the connection still open
}

bool UpstreamConn::open(EndpointPool& pool, std::uint32_t slot, std::uint32_t generation, int& error) {
    const net::SocketAddress& addr = pool.endpoint.address;
    fd_ = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        error = errno;
        return false;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pool_ = &pool;
    slot_ = slot;
    generation_ = generation;
    requests_ = 0;
    inflight_ = 1;
    state_ = State::Connecting;
    recv_armed_ = false;
    recv_paused_ = false;
    send_inflight_ = false;
    owner_ = nullptr;
    queue_ = nullptr;
    ++pool.open;
    pool.count_open(1);
    reactor_.io().connect(fd_, addr.get(), addr.length, io::pack(io::Op::Connect, generation_, slot_));
    return true;
}

void UpstreamConn::on_connect(const io::Completion& c) {
    --inflight_;
    if (state_ == State::Closing) {
        maybe_recycle();
        return;
    }
    if (c.res < 0) {
        fail_connect(c.res);
        return;
    }
    if (pool_->cluster->cluster().tls() != nullptr) {
        if (!tls_begin()) {
            fail_connect(kTlsFailed);
        }
        return;  // connected once the handshake is done
    }
    connected_ok();
}

void UpstreamConn::connected_ok() {
    state_ = State::Busy;
    arm_recv();
    if (owner_ != nullptr) {
        owner_->upstream_connected(*this, 0);
    } else {
        release_to_pool();  // the exchange that wanted it went away meanwhile: keep it
    }
}

void UpstreamConn::fail_connect(int error) {
    if (owner_ != nullptr) {
        owner_->upstream_connected(*this, error);
    } else {
        close();
    }
}

void UpstreamConn::arm_recv() {
    const bool handshaking = tls_ != nullptr && state_ == State::Connecting;
    if (recv_armed_ || recv_paused_ || !(connected() || handshaking)) {
        return;
    }
    recv_armed_ = true;
    ++inflight_;
    reactor_.io().recv(fd_, io::pack(io::Op::UpRecv, generation_, slot_));
}

void UpstreamConn::pause_recv() {
    if (recv_paused_) {
        return;
    }
    recv_paused_ = true;
    if (recv_armed_) {
        reactor_.io().cancel_recv(fd_, io::pack(io::Op::UpRecv, generation_, slot_));
    }
}

void UpstreamConn::resume_recv() {
    if (!recv_paused_) {
        return;
    }
    recv_paused_ = false;
    arm_recv();
}

void UpstreamConn::on_recv(const io::Completion& c) {
    if (!c.more) {
        recv_armed_ = false;
        --inflight_;
    }
    if (c.res > 0 && tls_ != nullptr) {
        const auto bid = static_cast<std::uint16_t>(c.buffer);
        if (state_ != State::Closing) {
            tls_input(reactor_.io().buffers().data(bid), static_cast<std::size_t>(c.res));
        }
        reactor_.io().buffers().release(bid);
    } else if (c.res > 0) {
        const auto bid = static_cast<std::uint16_t>(c.buffer);
        if (state_ == State::Busy && owner_ != nullptr) {
            reactor_.own_buffer(bid);
            owner_->upstream_data(*this, reactor_.io().buffers().data(bid), static_cast<std::size_t>(c.res), bid);
            reactor_.put_buffer(bid);
        } else {
            // Bytes on an idle connection (a late or unsolicited response): never reuse it.
            reactor_.io().buffers().release(bid);
            close();
        }
    } else if (c.res == -ENOBUFS) {
        if (state_ == State::Busy || state_ == State::Idle || (state_ == State::Connecting && tls_ != nullptr)) {
            reactor_.rearm_upstream_later(this);
        }
    } else if (c.res == -ECANCELED) {
        // Only pausing cancels a receive (closing aside): re-arm if the pause is already over.
        if (state_ != State::Closing && !recv_paused_) {
            arm_recv();
        }
    } else if (state_ == State::Connecting) {
        fail_connect(kTlsFailed);  // closed during the TLS handshake
    } else {
        // EOF or an error. An idle connection closed by the server just leaves the pool.
        if (state_ == State::Busy && owner_ != nullptr) {
            owner_->upstream_closed(*this, c.res);
        } else {
            close();
        }
    }
    if (state_ != State::Closing && !recv_armed_ && c.res > 0) {
        arm_recv();  // the multishot ended on its own
    }
    maybe_recycle();
}

void UpstreamConn::send_from(SendQueue* queue) {
    queue_ = queue;
    if (state_ == State::Busy && !send_inflight_ && queue_ != nullptr && !queue_->empty()) {
        start_send();
    }
}

void UpstreamConn::start_send() {
    if (tls_ != nullptr && tls_->session.has_output()) {
        tls_send_control();  // the queue follows once that is out
        return;
    }
    const unsigned n = queue_->prepare();
    if (n == 0) {
        return;
    }
    if (tls_ == nullptr) {
        send_inflight_ = true;
        ++inflight_;
        reactor_.io().send(fd_, queue_->iov(), n, io::pack(io::Op::UpSend, generation_, slot_));
        return;
    }
    const std::size_t consumed = tls_->session.write(queue_->iov(), n, ~std::size_t{0});
    if (consumed == 0 || !tls_->session.has_output()) {
        if (owner_ != nullptr) {
            owner_->upstream_closed(*this, -ENOMEM);
        } else {
            close();
        }
        return;
    }
    tls_->plain_inflight = static_cast<std::uint32_t>(consumed);
    tls_->data_inflight = true;
    send_ciphertext();
}

void UpstreamConn::on_send(const io::Completion& c) {
    --inflight_;
    send_inflight_ = false;
    if (state_ == State::Closing) {
        maybe_recycle();
        return;
    }
    if (c.res < 0) {
        if (owner_ != nullptr) {
            owner_->upstream_closed(*this, c.res);
        } else {
            close();
        }
        maybe_recycle();
        return;
    }
    std::int32_t res = c.res;
    if (tls_ != nullptr) {
        tls::Session& session = tls_->session;
        session.output_sent(static_cast<std::size_t>(res));
        if (session.has_output()) {
            send_ciphertext();  // the rest, or records queued behind it
            return;
        }
        if (!tls_->data_inflight) {
            // A handshake flight or alert is out; queued plaintext may follow.
            if (state_ == State::Busy && queue_ != nullptr && !queue_->empty()) {
                start_send();
            }
            maybe_recycle();
            return;
        }
        tls_->data_inflight = false;
        res = static_cast<std::int32_t>(tls_->plain_inflight);
        tls_->plain_inflight = 0;
    }
    if (queue_ == nullptr) {
        return;
    }
    queue_->consume(static_cast<std::uint32_t>(res));
    if (!queue_->empty()) {
        start_send();
    } else if (owner_ != nullptr) {
        owner_->upstream_drained(*this);
    }
    maybe_recycle();
}

// ---------------------------------------------------------------------------------------------
// TLS

bool UpstreamConn::tls_begin() {
    const upstream::Cluster& cluster = pool_->cluster->cluster();
    tls_ = reactor_.take_tls();
    if (tls_ == nullptr) {
        return false;
    }
    // SNI and the certificate check use the configured name, else the endpoint's host name,
    // else its IP address (checked against IP subjectAltNames; no SNI is sent for an address).
    const UpstreamTlsOptions& o = cluster.options().tls;
    const upstream::Endpoint& e = pool_->endpoint;
    char ip[64];
    std::string_view name = o.server_name;
    if (name.empty()) {
        name = e.hostname;
    }
    if (name.empty()) {
        name = {ip, e.address.format_ip(ip, sizeof ip)};
    }
    SSL_SESSION* reuse = o.session_reuse ? pool_->tls_session : nullptr;
    if (!tls_->session.start_client(cluster.tls(), name, reuse)) {
        return false;
    }
    if (tls_->session.handshake() == tls::Status::Error) {
        return false;
    }
    state_ = State::Connecting;
    arm_recv();
    tls_send_control();  // the ClientHello
    return true;
}

void UpstreamConn::tls_input(const char* data, std::size_t len) {
    tls::Session& s = tls_->session;
    s.set_input(data, len);
    if (state_ == State::Connecting) {
        const tls::Status st = s.handshake();
        if (st == tls::Status::WantRead) {
            tls_send_control();
            return;
        }
        if (st != tls::Status::Ok) {
            tls_send_control();  // the alert, best effort
            fail_connect(kTlsFailed);
            return;
        }
        connected_ok();
        if (state_ == State::Closing) {
            return;
        }
    }
    io::BufferPool& buffers = reactor_.io().buffers();
    while (state_ == State::Busy || state_ == State::Idle) {
        const int bid = buffers.take();
        if (bid < 0) {
            if (owner_ != nullptr) {
                owner_->upstream_closed(*this, -ENOMEM);
            } else {
                close();
            }
            return;
        }
        const auto b = static_cast<std::uint16_t>(bid);
        std::size_t n = 0;
        const tls::Status st = s.read(buffers.data(b), buffers.buffer_bytes(), n);
        if (st != tls::Status::Ok) {
            buffers.release(b);
            if (st != tls::Status::WantRead) {
                // close_notify or a broken record: as a plain peer's EOF or reset.
                if (state_ == State::Busy && owner_ != nullptr) {
                    owner_->upstream_closed(*this, st == tls::Status::Closed ? 0 : -EPROTO);
                } else {
                    close();
                }
            }
            break;
        }
        if (state_ == State::Busy && owner_ != nullptr) {
            reactor_.own_buffer(b);
            owner_->upstream_data(*this, buffers.data(b), n, b);
            reactor_.put_buffer(b);
        } else {
            buffers.release(b);
            close();  // plaintext on an idle connection: never reuse it
        }
    }
    // TLS 1.3 tickets come after the handshake: keep the newest for the next connection.
    if (SSL_SESSION* fresh = s.take_session(); fresh != nullptr && pool_ != nullptr) {
        if (pool_->tls_session != nullptr) {
            SSL_SESSION_free(pool_->tls_session);
        }
        pool_->tls_session = fresh;
    } else if (fresh != nullptr) {
        SSL_SESSION_free(fresh);
    }
    if (state_ != State::Closing && !send_inflight_ && s.has_output()) {
        tls_send_control();
    }
}

void UpstreamConn::tls_send_control() {
    if (send_inflight_ || !tls_->session.has_output()) {
        return;
    }
    tls_->data_inflight = false;
    send_ciphertext();
}

void UpstreamConn::send_ciphertext() {
    const std::string_view out = tls_->session.pending_output();
    tls_->iov.iov_base = const_cast<char*>(out.data());
    tls_->iov.iov_len = out.size();
    send_inflight_ = true;
    ++inflight_;
    reactor_.io().send(fd_, &tls_->iov, 1, io::pack(io::Op::UpSend, generation_, slot_));
}

void UpstreamConn::arm_timer(std::uint64_t deadline_ms) { reactor_.timers().arm(timer_, deadline_ms); }

void UpstreamConn::cancel_timer() noexcept { reactor_.timers().cancel(timer_); }

void UpstreamConn::on_timer(detail::TimerWheel::Timer* t) {
    auto* self = static_cast<UpstreamConn*>(t->owner);
    if (self->state_ == State::Idle) {
        self->close();  // idle longer than the pool keeps connections
    } else if (self->owner_ != nullptr) {
        self->owner_->upstream_timer(*self);
    } else if (self->state_ != State::Closing) {
        self->close();
    }
    self->maybe_recycle();
}

void UpstreamConn::release_to_pool() {
    owner_ = nullptr;
    queue_ = nullptr;
    cancel_timer();
    EndpointPool& pool = *pool_;
    const PoolOptions& opts = pool.cluster->cluster().options().pool;
    if (!pool.waiters.empty() && !pool.orphaned && !recv_paused_ && !send_inflight_ && !reactor_.stopping()) {
        // A request waits for a connection: hand this one over instead of pooling it.
        UpstreamOwner* next = pool.waiters.front();
        pool.waiters.erase(pool.waiters.begin());
        next->upstream_available(this);
        return;
    }
    if (pool.orphaned || recv_paused_ || send_inflight_ || reactor_.stopping() ||
        pool.idle.size() >= opts.max_idle_per_endpoint) {
        close();
        return;
    }
    state_ = State::Idle;
    pool.idle.push_back(this);
    pool.count_idle(1);
    arm_timer(reactor_.now_ms() + static_cast<std::uint64_t>(opts.idle_timeout.count()));
    arm_recv();
}

void UpstreamConn::take_from_pool() noexcept {
    cancel_timer();
    state_ = State::Busy;
}

void UpstreamConn::close() noexcept {
    if (state_ == State::Free || state_ == State::Closing) {
        return;
    }
    if (state_ == State::Idle) {
        auto& idle = pool_->idle;
        if (auto it = std::find(idle.begin(), idle.end(), this); it != idle.end()) {
            idle.erase(it);
            pool_->count_idle(-1);
        }
    }
    state_ = State::Closing;
    owner_ = nullptr;
    queue_ = nullptr;
    cancel_timer();
    if (inflight_ > 0) {
        reactor_.io().cancel(fd_);
    }
    maybe_recycle();
}

void UpstreamConn::maybe_recycle() noexcept {
    if (state_ != State::Closing || inflight_ != 0) {
        return;
    }
    ::close(fd_);
    fd_ = -1;
    state_ = State::Free;
    if (tls_ != nullptr) {
        reactor_.give_tls(tls_);
        tls_ = nullptr;
    }
    EndpointPool* pool = pool_;
    pool_ = nullptr;
    reactor_.upstream_closed(this);
    reactor_.proxy().connection_closed(*pool);
}

// ---------------------------------------------------------------------------------------------
// ProxyContext

EndpointPool::~EndpointPool() {
    if (tls_session != nullptr) {
        SSL_SESSION_free(tls_session);
    }
}

ProxyContext::~ProxyContext() {
    for (UpstreamH2Session* s : sessions_) {
        delete s;
    }
    for (auto& [cluster, local] : clusters_) {
        for (upstream::LocalEndpoint& e : local->endpoints()) {
            delete static_cast<EndpointPool*>(e.pool);
            e.pool = nullptr;
        }
    }
}

upstream::LocalCluster& ProxyContext::cluster(const std::shared_ptr<upstream::Cluster>& c) {
    auto it = clusters_.find(c.get());
    if (it == clusters_.end()) {
        it = clusters_.emplace(c.get(), std::make_unique<upstream::LocalCluster>(c, &ProxyContext::drop_pool, this)).first;
    }
    return *it->second;
}

EndpointPool& ProxyContext::pool(upstream::LocalCluster& cluster, int index) {
    upstream::LocalEndpoint& e = cluster.endpoints()[static_cast<std::size_t>(index)];
    if (e.pool == nullptr) {
        auto* p = new EndpointPool;
        p->endpoint = *e.endpoint;
        p->cluster = &cluster;
        p->upstream_series = &reactor_.metrics().upstream(cluster.cluster().options().name);
        p->metrics();  // the endpoint's series shows from the first request on
        e.pool = p;
    }
    return *static_cast<EndpointPool*>(e.pool);
}

UpstreamConn* ProxyContext::take_idle(EndpointPool& pool) {
    while (!pool.idle.empty()) {
        UpstreamConn* c = pool.idle.back();
        pool.idle.pop_back();
        pool.count_idle(-1);
        if (c->state() == UpstreamConn::State::Idle) {
            c->take_from_pool();
            return c;
        }
    }
    return nullptr;
}

UpstreamConn* ProxyContext::connect(EndpointPool& pool, int& error) {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
    UpstreamConn* c = reactor_.allocate_upstream(slot, generation);
    if (!c->open(pool, slot, generation, error)) {
        reactor_.upstream_closed(c);
        return nullptr;
    }
    ++pool.cluster->connections;
    return c;
}

UpstreamH2Session* ProxyContext::h2_session(EndpointPool& pool) noexcept {
    for (UpstreamH2Session* s : pool.h2) {
        if (s->can_open()) {
            return s;
        }
    }
    return nullptr;
}

UpstreamH2Session* ProxyContext::h2_connect(EndpointPool& pool, int& error) {
    auto* s = new UpstreamH2Session(reactor_, pool);
    if (!s->open(error)) {
        delete s;
        return nullptr;
    }
    sessions_.push_back(s);
    return s;
}

void ProxyContext::h2_gone(UpstreamH2Session* session) noexcept {
    sessions_.erase(std::remove(sessions_.begin(), sessions_.end(), session), sessions_.end());
}

void ProxyContext::connection_closed(EndpointPool& pool) noexcept {
    --pool.open;
    pool.count_open(-1);
    if (pool.cluster != nullptr && pool.cluster->connections > 0) {
        --pool.cluster->connections;
    }
    if (!pool.waiters.empty() && !reactor_.stopping()) {
        // A connection slot came free: the oldest waiting request may connect.
        UpstreamOwner* next = pool.waiters.front();
        pool.waiters.erase(pool.waiters.begin());
        next->upstream_available(nullptr);
    }
    if (pool.orphaned && pool.open == 0) {
        delete &pool;
    }
}

void ProxyContext::drop_pool(void* /*context*/, void* p) {
    auto* pool = static_cast<EndpointPool*>(p);
    pool->orphaned = true;
    // Requests waiting on an endpoint that left pick again.
    std::vector<UpstreamOwner*> waiters;
    waiters.swap(pool->waiters);
    for (UpstreamOwner* w : waiters) {
        w->upstream_available(nullptr);
    }
    if (pool->open == 0) {
        delete pool;
        return;
    }
    // Busy connections finish their exchange and close then; the last one frees the pool, so
    // it is not touched after the loop.
    std::vector<UpstreamConn*> idle;
    idle.swap(pool->idle);
    pool->count_idle(-static_cast<std::int64_t>(idle.size()));
    for (UpstreamConn* c : idle) {
        c->close();
    }
    // HTTP/2 sessions close once their last stream ended (each checks `orphaned`).
    const std::vector<UpstreamH2Session*> sessions = pool->h2;
    for (UpstreamH2Session* s : sessions) {
        s->close_if_idle();
    }
}

void ProxyContext::keep_only(const std::vector<const upstream::Cluster*>& live) {
    for (auto it = clusters_.begin(); it != clusters_.end();) {
        upstream::LocalCluster& local = *it->second;
        if (std::find(live.begin(), live.end(), it->first) != live.end() || local.requests != 0 ||
            local.pending != 0) {
            ++it;
            continue;
        }
        for (upstream::LocalEndpoint& e : local.endpoints()) {
            if (auto* pool = static_cast<EndpointPool*>(e.pool)) {
                e.pool = nullptr;
                pool->cluster = nullptr;  // connections still closing must not reach it
                drop_pool(this, pool);
            }
        }
        it = clusters_.erase(it);
    }
}

void ProxyContext::close_idle() noexcept {
    for (auto& [cluster, local] : clusters_) {
        for (upstream::LocalEndpoint& e : local->endpoints()) {
            auto* pool = static_cast<EndpointPool*>(e.pool);
            while (pool != nullptr && !pool->idle.empty()) {
                pool->idle.back()->close();
            }
            if (pool != nullptr) {
                const std::vector<UpstreamH2Session*> sessions = pool->h2;
                for (UpstreamH2Session* s : sessions) {
                    s->close_if_idle();
                }
            }
        }
    }
}

}  // namespace blitz::server
