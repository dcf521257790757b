#include "server/reactor.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>

#include <blitz/log.hpp>

#include "server/connection.hpp"
#include "server/h2_connection.hpp"
#include "server/tls_state.hpp"
#include "server/send_queue.hpp"
#include "server/upstream_conn.hpp"

namespace blitz {

namespace {
thread_local Reactor* t_current = nullptr;
}

Reactor* Reactor::current() noexcept { return t_current; }

}  // namespace blitz

namespace blitz::server {

namespace {
// How long a stopping reactor waits for its connections' cancellations to complete.
constexpr std::uint64_t kStopGraceMs = 1000;
// After accept fails for lack of descriptors (EMFILE), wait before trying again.
constexpr std::uint64_t kAcceptRetryMs = 100;
}  // namespace

ReactorImpl::ReactorImpl(ReactorOwner& owner, unsigned index, MetricsLimits limits,
                         std::shared_ptr<metrics::LabelFamilies> label_families)
    : owner_(owner), index_(index), metrics_(limits, std::move(label_families)) {}

ReactorImpl::~ReactorImpl() {
    for (Connection* c : slots_) {
        if (c != nullptr && c->fd_ >= 0) {
            ::close(c->fd_);
            c->fd_ = -1;
        }
    }
    for (UpstreamConn* u : up_slots_) {
        if (u != nullptr && u->fd() >= 0) {
            ::close(u->fd());
        }
    }
    // The backend goes first: nothing may complete into memory freed below.
    backend_.reset();
    for (Connection* c : slots_) {
        if (c != nullptr) {
            if (c->active_ != nullptr) {
                c->end_exchange();
            }
            delete c;
        }
    }
    for (Connection* c : free_connections_) {
        delete c;
    }
    for (UpstreamConn* u : up_slots_) {
        delete u;
    }
    for (UpstreamConn* u : up_free_) {
        delete u;
    }
    for (SendQueue* q : queues_free_) {
        delete q;
    }
    proxy_.reset();
    for (void* p : stream_free_) {
        ::operator delete(p);
    }
    for (void* p : active_free_) {
        ::operator delete(p);
    }
    for (char* b : out_blocks_) {
        std::free(b);
    }
    for (TlsState* t : tls_free_) {
        delete t;
    }
    for (char* b : tls_buffers_) {
        std::free(b);
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
    }
    if (t_current == this) {
        t_current = nullptr;
    }
}

Result<void, std::string> ReactorImpl::init(const io::BackendOptions& options,
                                            std::string& fallback_reason) {
    t_current = this;
    auto backend = io::Backend::create(options, fallback_reason);
    if (!backend) {
        return fail(backend.error());
    }
    backend_ = std::move(*backend);
    buffer_refs_.assign(options.max_recv_buffers, 0);
    proxy_ = std::make_unique<ProxyContext>(*this);
    update_clock();
    timers_ = std::make_unique<detail::TimerWheel>(now_ms_);
    observer_ = std::make_unique<ReactorObserver>(*this, owner_.exporter());
    tracing_ = owner_.exporter() != nullptr;

    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        return fail(std::string("eventfd: ") + std::strerror(errno));
    }
    backend_->poll_in(wake_fd_, io::pack(io::Op::Poll, 0, 0));

    apply_listeners();
    return {};
}

std::vector<int> ListenerShared::fds_for(unsigned index, unsigned reactors) const {
    std::vector<int> mine;
    if (fds.empty() || reactors == 0) {
        return mine;
    }
    if (fds.size() <= reactors) {
        mine.push_back(fds[index % fds.size()]);
        return mine;
    }
    for (std::size_t i = index; i < fds.size(); i += reactors) {
        mine.push_back(fds[i]);
    }
    return mine;
}

ListenerSlot& ReactorImpl::add_slot(int fd) {
    for (ListenerSlot& l : listeners_) {
        // A slot whose listener was removed is reused once its accept has completed and its
        // connections are gone, so reloads that add and remove listeners do not grow the list.
        if (l.removed && !l.accepting && l.connections == 0) {
            const std::uint32_t index = l.index;
            l = ListenerSlot{};
            l.index = index;
            l.fd = fd;
            return l;
        }
    }
    ListenerSlot& l = listeners_.emplace_back();
    l.index = static_cast<std::uint32_t>(listeners_.size() - 1);
    l.fd = fd;
    return l;
}

void ReactorImpl::set_config(ListenerSlot& l, const std::shared_ptr<const ListenerShared>& shared) {
    ListenerConfig* previous = l.config;
    l.config = &configs_.emplace_back(ListenerConfig{.shared = shared, .users = 1});
    if (previous != nullptr) {
        unpin(previous);  // its "current" reference
    }
    // The connection limit is split between reactors; the first ones take the remainder. Shared
    // sockets (fewer than reactors) split it the same way.
    const std::uint32_t reactors = owner_.reactor_count();
    const std::uint32_t limit = shared->options.max_connections;
    l.max_connections = limit == 0 ? 0 : limit / reactors + (index_ < limit % reactors ? 1 : 0);
    if (scratch_.size() < shared->options.limits.max_headers + 1) {
        scratch_.resize(shared->options.limits.max_headers + 1);
    }
}

void ReactorImpl::remove_slot(ListenerSlot& l) {
    if (l.accepting) {
        backend_->cancel(l.fd);
    }
    backend_->submit();  // the server core closes the socket once every reactor let go of it
    l.closed = true;
    l.removed = true;
    l.fd = -1;
    for (Connection* c : slots_) {
        if (c != nullptr && c->listener() == &l) {
            c->drain();
        }
    }
    release_removed(l);
}

void ReactorImpl::release_removed(ListenerSlot& l) noexcept {
    // Its last connection is gone: nothing here uses that generation any more.
    if (l.removed && l.connections == 0 && l.config != nullptr) {
        ListenerConfig* config = l.config;
        l.config = nullptr;
        unpin(config);
    }
}

void ReactorImpl::apply_listeners() {
    const auto current = owner_.listeners();
    metrics_.forget_addresses();
    const unsigned reactors = owner_.reactor_count();
    std::vector<ListenerSlot*> kept;
    for (const auto& shared : current) {
        for (int fd : shared->fds_for(index_, reactors)) {
            ListenerSlot* slot = nullptr;
            for (ListenerSlot& l : listeners_) {
                if (!l.removed && l.fd == fd) {
                    slot = &l;
                    break;
                }
            }
            const bool added = slot == nullptr;
            if (added) {
                slot = &add_slot(fd);
            }
            set_config(*slot, shared);
            kept.push_back(slot);
            if (slot->max_connections == 0 && shared->options.max_connections != 0) {
                slot->closed = true;  // more reactors than connections allowed: this one takes none
            } else if (added || (!slot->accepting && !stopping_ && !draining() &&
                                 (slot->max_connections == 0 || slot->connections < slot->max_connections))) {
                slot->closed = false;
                arm_accept(*slot);
            }
        }
    }
    for (ListenerSlot& l : listeners_) {
        if (!l.removed && std::find(kept.begin(), kept.end(), &l) == kept.end()) {
            remove_slot(l);
        }
    }
    if (proxy_ != nullptr) {
        forget_clusters();
    }
}

void ReactorImpl::unpin(ListenerConfig* c) noexcept {
    if (--c->users != 0) {
        return;
    }
    for (auto it = configs_.begin(); it != configs_.end(); ++it) {
        if (&*it == c) {
            configs_.erase(it);
            break;
        }
    }
    if (proxy_ != nullptr && !stopping_) {
        forget_clusters();
    }
}

void ReactorImpl::forget_clusters() {
    std::vector<const upstream::Cluster*> live;
    for (const ListenerConfig& c : configs_) {
        live.insert(live.end(), c.shared->clusters.begin(), c.shared->clusters.end());
    }
    proxy_->keep_only(live);
    std::vector<const LogTarget*> logs;
    for (const ListenerConfig& c : configs_) {
        logs.push_back(c.shared->access_log.get());
        for (const auto& l : c.shared->route_logs) {
            logs.push_back(l.get());
        }
    }
    observer_->keep_only(logs);
}

blitz::Backend ReactorImpl::backend() const noexcept { return backend_->kind(); }

void ReactorImpl::arm_accept(ListenerSlot& l) {
    if (l.accepting || l.closed || stopping_ || draining()) {
        return;
    }
    l.accepting = true;
    // With a connection limit each accept is armed singly, so the limit is exact.
    backend_->accept(l.fd, io::pack(io::Op::Accept, 0, l.index), l.max_connections == 0);
}

void ReactorImpl::run() {
    t_current = this;
    std::uint64_t stop_deadline = 0;
    for (;;) {
        if (draining() && !stopping_ && (live_connections_ == 0 || now_ms_ >= drain_deadline_ms_)) {
            begin_stop();  // drained, or out of time: close what is left
        }
        if (stopping_) {
            if (stop_deadline == 0) {
                stop_deadline = now_ms_ + kStopGraceMs;
            }
            if (live_connections_ == 0) {
                observer_->flush();  // the last lines and spans; their writes end the loop
            }
            if ((live_connections_ == 0 && !observer_->writing()) || now_ms_ >= stop_deadline) {
                break;
            }
        }
        int rc = backend_->run(static_cast<int>(next_timeout_ms()), *this);
        if (rc < 0) {
            log(LogLevel::Error, "reactor %u: event loop failed: %s", index_, std::strerror(-rc));
            break;
        }
        update_clock();
        timers_->advance(now_ms_);
        run_timed_tasks();
        run_tasks();
        if (!flush_.empty()) {
            flush_swap_.swap(flush_);
            for (Connection* c : flush_swap_) {
                c->deferred_flush();
            }
            flush_swap_.clear();
        }
        {
            const io::BufferPool& pool = backend_->buffers();
            metrics_.recv_buffers_in_use.set(pool.in_use());
            metrics_.recv_buffers_allocated.set(pool.total());
        }
        metrics_.maintain(now_ms_);  // label re-ranking, once a second
        if (!rearm_.empty() || !up_rearm_.empty()) {
            // Receives that found the ring empty. A burst (many connections' data completing in
            // one turn) is over by now and its buffers are back; only when connections still
            // hold most buffers across turns does the pool grow. So memory follows connections
            // that hold data, not the size of the largest burst.
            io::BufferPool& pool = backend_->buffers();
            if (pool.in_use() * 2 >= pool.total()) {
                pool.grow();
            }
            rearm_swap_.swap(rearm_);
            for (Connection* c : rearm_swap_) {
                if (c->fd_ >= 0) {
                    c->rearm_recv();
                }
            }
            rearm_swap_.clear();
            up_rearm_swap_.swap(up_rearm_);
            for (UpstreamConn* c : up_rearm_swap_) {
                c->rearm();
            }
            up_rearm_swap_.clear();
        }
    }
}

std::int64_t ReactorImpl::next_timeout_ms() noexcept {
    if (stopping_) {
        return 10;
    }
    if (!rearm_.empty() || !up_rearm_.empty()) {
        return 1;  // buffers are short: give releases a moment, then retry
    }
    if (tasks_pending_.load(std::memory_order_acquire)) {
        return 0;
    }
    std::int64_t t = timers_->next_timeout_ms(now_ms_);
    if (draining()) {
        const auto d = static_cast<std::int64_t>(drain_deadline_ms_ > now_ms_ ? drain_deadline_ms_ - now_ms_ : 0);
        t = t < 0 ? d : std::min(t, d);
    }
    for (const TimedTask& task : timed_) {
        std::int64_t d = task.due_ms > now_ms_ ? static_cast<std::int64_t>(task.due_ms - now_ms_) : 0;
        t = t < 0 ? d : std::min(t, d);
    }
    return t;
}

void ReactorImpl::update_clock() noexcept {
    now_ = std::chrono::steady_clock::now();
    now_ms_ = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now_.time_since_epoch()).count());
    const std::time_t wall = std::time(nullptr);
    if (wall != date_second_) {
        date_second_ = wall;
        tm t{};
        gmtime_r(&wall, &t);
        // RFC 9110 §5.6.7 IMF-fixdate, always 29 characters.
        std::strftime(date_, sizeof date_, "%a, %d %b %Y %H:%M:%S GMT", &t);
    }
}

void ReactorImpl::on_completion(const io::Completion& c) {
    const io::Op op = io::op_of(c.user_data);
    const std::uint32_t slot = io::slot_of(c.user_data);
    switch (op) {
        case io::Op::Accept:
            if (slot < listeners_.size()) {
                on_accept(listeners_[slot], c);
            }
            return;
        case io::Op::Recv:
        case io::Op::Send: {
            Connection* conn = slot < slots_.size() ? slots_[slot] : nullptr;
            if (conn == nullptr || generations_[slot] != io::generation_of(c.user_data) || conn->fd_ < 0) {
                // Stale: the connection is gone. Only its buffer needs to go back.
                if (c.buffer >= 0) {
                    backend_->buffers().release(static_cast<std::uint16_t>(c.buffer));
                }
                return;
            }
            if (op == io::Op::Recv) {
                conn->on_recv(c);
            } else {
                conn->on_send(c);
            }
            return;
        }
        case io::Op::Connect:
        case io::Op::UpRecv:
        case io::Op::UpSend: {
            UpstreamConn* up = slot < up_slots_.size() ? up_slots_[slot] : nullptr;
            if (up == nullptr || up_generations_[slot] != io::generation_of(c.user_data)) {
                if (c.buffer >= 0) {
                    backend_->buffers().release(static_cast<std::uint16_t>(c.buffer));
                }
                return;
            }
            if (op == io::Op::Connect) {
                up->on_connect(c);
            } else if (op == io::Op::UpRecv) {
                up->on_recv(c);
            } else {
                up->on_send(c);
            }
            return;
        }
        case io::Op::Poll:
            on_wake();
            return;
        case io::Op::LogWrite:
            observer_->write_done(slot, c.res);
            return;
        case io::Op::None:
            return;
    }
}

void ReactorImpl::on_accept(ListenerSlot& l, const io::Completion& c) {
    if (!c.more) {
        l.accepting = false;
    }
    if (c.res >= 0) {
        const int fd = c.res;
        if (stopping_ || l.removed || draining()) {
            // Accepted just as the listener went away: this connection asked for nothing yet.
            ::close(fd);
            return;
        }
        std::uint32_t slot = 0;
        std::uint32_t generation = 0;
        Connection* conn = allocate_connection(slot, generation);
        ++l.connections;
        ++live_connections_;
        metrics_.connections_accepted.add();
        metrics_.connections_active.add();
        conn->open(fd, l, slot, generation);
        if (!l.accepting && (l.max_connections == 0 || l.connections < l.max_connections)) {
            arm_accept(l);
        }
        return;
    }
    if (c.res == -ECANCELED || stopping_ || l.closed) {
        return;
    }
    if (c.res == -EMFILE || c.res == -ENFILE || c.res == -ENOBUFS || c.res == -ENOMEM) {
        log(LogLevel::Warn, "listener \"%s\": accept failed: %s; retrying shortly",
            l.config->shared->options.name.c_str(), std::strerror(-c.res));
        post_after(std::chrono::milliseconds(kAcceptRetryMs), [this, &l] {
            if (l.max_connections == 0 || l.connections < l.max_connections) {
                arm_accept(l);
            }
        });
        return;
    }
    // Transient per-connection errors (ECONNABORTED and the like): keep accepting.
    if (!l.accepting && (l.max_connections == 0 || l.connections < l.max_connections)) {
        arm_accept(l);
    }
}

Connection* ReactorImpl::allocate_connection(std::uint32_t& slot, std::uint32_t& generation) {
    Connection* conn;
    if (!free_connections_.empty()) {
        conn = free_connections_.back();
        free_connections_.pop_back();
    } else {
        conn = new Connection(*this);
    }
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.push_back(nullptr);
        generations_.push_back(0);
    }
    generation = generations_[slot] = (generations_[slot] + 1) & 0xFFFFFFu;
    slots_[slot] = conn;
    return conn;
}

void ReactorImpl::connection_closed(Connection* c) noexcept {
    const std::uint32_t slot = c->slot();
    ListenerSlot* l = c->listener();
    if (c->config_ != nullptr) {
        unpin(c->config_);
        c->config_ = nullptr;
    }
    slots_[slot] = nullptr;
    generations_[slot] = (generations_[slot] + 1) & 0xFFFFFFu;
    free_slots_.push_back(slot);
    free_connections_.push_back(c);
    metrics_.connections_active.sub();
    metrics_.connections_closed[static_cast<std::size_t>(c->close_reason())].add();
    if (--live_connections_ == 0 && draining()) {
        // Drained: the loop must see it now, not after the wait it may already have planned.
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
    }
    if (l != nullptr) {
        --l->connections;
        release_removed(*l);
        // Accepting paused at the limit resumes as soon as a connection is gone.
        if (!l->accepting && !stopping_ && l->max_connections != 0 && l->connections < l->max_connections) {
            arm_accept(*l);
        }
    }
}

void ReactorImpl::rearm_recv_later(Connection* c) {
    rearm_.push_back(c);
}

void ReactorImpl::put_buffer(std::uint16_t bid) noexcept {
    if (--buffer_refs_[bid] == 0 && backend_ != nullptr) {
        backend_->buffers().release(bid);
    }
}

UpstreamConn* ReactorImpl::allocate_upstream(std::uint32_t& slot, std::uint32_t& generation) {
    UpstreamConn* c;
    if (!up_free_.empty()) {
        c = up_free_.back();
        up_free_.pop_back();
    } else {
        c = new UpstreamConn(*this);
    }
    if (!up_free_slots_.empty()) {
        slot = up_free_slots_.back();
        up_free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(up_slots_.size());
        up_slots_.push_back(nullptr);
        up_generations_.push_back(0);
    }
    generation = up_generations_[slot] = (up_generations_[slot] + 1) & 0xFFFFFFu;
    up_slots_[slot] = c;
    return c;
}

void ReactorImpl::upstream_closed(UpstreamConn* c) noexcept {
    const std::uint32_t slot = c->slot();
    up_slots_[slot] = nullptr;
    up_generations_[slot] = (up_generations_[slot] + 1) & 0xFFFFFFu;
    up_free_slots_.push_back(slot);
    up_free_.push_back(c);
}

void ReactorImpl::rearm_upstream_later(UpstreamConn* c) {
    up_rearm_.push_back(c);
}

SendQueue* ReactorImpl::take_queue() {
    if (!queues_free_.empty()) {
        SendQueue* q = queues_free_.back();
        queues_free_.pop_back();
        return q;
    }
    return new SendQueue(*this);
}

void ReactorImpl::give_queue(SendQueue* q) noexcept {
    q->release_all();
    q->set_retain(false);
    if (queues_free_.size() >= 256) {
        delete q;
        return;
    }
    queues_free_.push_back(q);
}

std::span<Header> ReactorImpl::header_scratch(std::size_t n) {
    if (scratch_.size() < n) {
        scratch_.resize(n);
    }
    return {scratch_.data(), n};
}

char* ReactorImpl::take_out_block() {
    if (!out_blocks_.empty()) {
        char* b = out_blocks_.back();
        out_blocks_.pop_back();
        return b;
    }
    auto* b = static_cast<char*>(std::malloc(kOutBlockBytes));
    if (b == nullptr) {
        throw std::bad_alloc();
    }
    return b;
}

TlsState* ReactorImpl::take_tls() {
    if (!tls_free_.empty()) {
        TlsState* t = tls_free_.back();
        tls_free_.pop_back();
        return t;
    }
    return new (std::nothrow) TlsState(*this);
}

void ReactorImpl::give_tls(TlsState* t) noexcept {
    t->session.reset();
    t->info = TlsInfo{};
    t->info_ready = false;
    t->data_inflight = false;
    t->failed = false;
    t->notify_queued = false;
    t->plain_inflight = 0;
    if (tls_free_.size() >= 1024) {
        delete t;
        return;
    }
    tls_free_.push_back(t);
}

char* ReactorImpl::take_buffer() noexcept {
    if (!tls_buffers_.empty()) {
        char* b = tls_buffers_.back();
        tls_buffers_.pop_back();
        return b;
    }
    return static_cast<char*>(std::malloc(kTlsBufferBytes));
}

void ReactorImpl::give_buffer(char* buffer) noexcept {
    if (tls_buffers_.size() >= 64) {
        std::free(buffer);
        return;
    }
    tls_buffers_.push_back(buffer);
}

void ReactorImpl::give_out_block(char* block) noexcept {
    if (out_blocks_.size() >= 256) {
        std::free(block);
        return;
    }
    out_blocks_.push_back(block);
}

namespace {

// A recycled block of `bytes` from `free`, or a new one.
void* take_recycled(std::vector<void*>& free, std::size_t bytes) {
    if (free.empty()) {
        return ::operator new(bytes);
    }
    void* p = free.back();
    free.pop_back();
    return p;
}

// Keeps `p` for reuse while `free` holds fewer than `keep` blocks.
void give_recycled(std::vector<void*>& free, void* p, std::size_t keep) noexcept {
    if (free.size() >= keep) {
        ::operator delete(p);
        return;
    }
    free.push_back(p);
}

}  // namespace

void* ReactorImpl::take_active_memory() { return take_recycled(active_free_, Connection::active_bytes()); }

void ReactorImpl::give_active_memory(void* p) noexcept { give_recycled(active_free_, p, 256); }

void* ReactorImpl::take_stream_memory() { return take_recycled(stream_free_, H2Stream::bytes()); }

void ReactorImpl::give_stream_memory(void* p) noexcept { give_recycled(stream_free_, p, 1024); }

// ---------------------------------------------------------------------------------------------
// Tasks, wake-ups, signals and stopping

void ReactorImpl::post(std::function<void()> task) {
    {
        std::lock_guard lock(tasks_mutex_);
        tasks_.push_back(std::move(task));
    }
    tasks_pending_.store(true, std::memory_order_release);
    if (t_current != this) {
        std::uint64_t one = 1;
        ssize_t w = ::write(wake_fd_, &one, sizeof one);
        (void)w;
    }
}

void ReactorImpl::post_after(std::chrono::milliseconds delay, std::function<void()> task) {
    if (t_current == this) {
        timed_.push_back({now_ms_ + static_cast<std::uint64_t>(delay.count()), std::move(task)});
        return;
    }
    post([this, delay, t = std::move(task)]() mutable { post_after(delay, std::move(t)); });
}

void ReactorImpl::run_tasks() {
    // The flag keeps the mutex off the loop's path while no task is queued.
    if (!tasks_pending_.load(std::memory_order_acquire)) {
        return;
    }
    {
        std::lock_guard lock(tasks_mutex_);
        tasks_pending_.store(false, std::memory_order_relaxed);
        if (tasks_.empty()) {
            return;
        }
        running_tasks_.swap(tasks_);
    }
    for (auto& t : running_tasks_) {
        t();
    }
    running_tasks_.clear();
}

void ReactorImpl::run_timed_tasks() {
    if (timed_.empty()) {
        return;
    }
    std::vector<std::function<void()>> due;
    for (auto it = timed_.begin(); it != timed_.end();) {
        if (it->due_ms <= now_ms_) {
            due.push_back(std::move(it->fn));
            it = timed_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& f : due) {
        f();
    }
}

void ReactorImpl::request_stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    ssize_t w = ::write(wake_fd_, &one, sizeof one);
    (void)w;
}

void ReactorImpl::on_wake() {
    std::uint64_t v;
    while (::read(wake_fd_, &v, sizeof v) > 0) {
    }
    if (stop_requested_.load(std::memory_order_acquire) && !stopping_) {
        begin_stop();
    }
}

void ReactorImpl::begin_drain(std::uint64_t deadline_ms) {
    if (stopping_ || draining()) {
        return;
    }
    drain_deadline_ms_ = std::max<std::uint64_t>(deadline_ms, 1);
    for (ListenerSlot& l : listeners_) {
        if (l.accepting) {
            backend_->cancel(l.fd);
        }
        l.closed = true;
    }
    backend_->submit();  // the cancellations reach the kernel before the sockets are closed
    for (Connection* c : slots_) {
        if (c != nullptr) {
            c->drain();
            c->maybe_recycle();
        }
    }
    proxy_->close_idle();
}

void ReactorImpl::begin_stop() {
    stopping_ = true;
    for (ListenerSlot& l : listeners_) {
        if (l.accepting) {
            backend_->cancel(l.fd);
        }
        l.closed = true;
    }
    for (Connection* c : slots_) {
        if (c != nullptr) {
            c->close_now();
            c->maybe_recycle();
        }
    }
    proxy_->close_idle();
}

}  // namespace blitz::server
