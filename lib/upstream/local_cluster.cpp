#include <algorithm>
#include <unordered_map>
#include <utility>

#include "upstream/cluster.hpp"

namespace blitz::upstream {

LocalCluster::LocalCluster(std::shared_ptr<Cluster> cluster, DropPool drop, void* drop_context)
    : cluster_(std::move(cluster)),
      factory_(cluster_->balancer_factory()),
      drop_(drop),
      drop_context_(drop_context) {
    refresh();
}

// Pools of the endpoints still in the set belong to the engine, which tears them down itself
// (drop_ is only for endpoints that left).
LocalCluster::~LocalCluster() = default;

void LocalCluster::refresh() {
    if (cluster_->version() == version_) {
        return;
    }
    std::shared_ptr<const EndpointSet> set = cluster_->endpoints();
    // Keyed by health object: it is what publish() carries over for an address that stays.
    std::unordered_map<const EndpointHealth*, const LocalEndpoint*> previous;
    previous.reserve(endpoints_.size());
    for (const auto& e : endpoints_) {
        previous.emplace(e.endpoint->health.get(), &e);
    }
    std::vector<LocalEndpoint> next;
    next.reserve(set->endpoints.size());
    for (const Endpoint& e : set->endpoints) {
        LocalEndpoint local{.endpoint = &e};
        if (auto it = previous.find(e.health.get()); it != previous.end()) {
            local.active_requests = it->second->active_requests;
            local.pool = it->second->pool;
            previous.erase(it);
        }
        next.push_back(local);
    }
    // What is left in `previous` has left the set; its pool goes (requests in flight on it keep
    // what they need: the engine owns that).
    for (const auto& [health, local] : previous) {
        if (local->pool != nullptr && drop_ != nullptr) {
            drop_(drop_context_, local->pool);
        }
    }
    infos_.clear();
    infos_.reserve(next.size());
    for (const Endpoint& e : set->endpoints) {
        infos_.push_back(EndpointInfo{.address = e.text, .weight = e.weight});
    }
    endpoints_ = std::move(next);
    balancer_ = factory_ ? factory_->create(infos_) : nullptr;
    // The old set is released after the new endpoints point into the new one.
    set_ = std::move(set);
    version_ = set_->version;
}

LocalCluster::Pick LocalCluster::pick(const PickContext& ctx, std::span<const int> tried,
                                      std::uint64_t now_ms) {
    refresh();
    if (!balancer_ || endpoints_.empty()) {
        return {};
    }
    const std::size_t n = endpoints_.size();
    std::uint64_t up = 0;
    for (std::size_t i = 0; i < n; ++i) {
        infos_[i].available = Cluster::available(*endpoints_[i].endpoint, now_ms);
        infos_[i].active_requests = endpoints_[i].active_requests;
        up += infos_[i].available ? 1 : 0;
    }
    // Below the threshold the health verdicts are more likely wrong (a bad check, a shared
    // dependency down) than every endpoint broken: sending to all beats failing all.
    const bool panic = cluster_->panic(up, n);
    bool any = false;
    bool any_untried = false;
    for (std::size_t i = 0; i < n; ++i) {
        infos_[i].available = infos_[i].available || panic;
        any = any || infos_[i].available;
        if (infos_[i].available &&
            std::find(tried.begin(), tried.end(), static_cast<int>(i)) != tried.end()) {
            infos_[i].available = false;
        }
        any_untried = any_untried || infos_[i].available;
    }
    if (!any) {
        return {};
    }
    if (!any_untried) {
        // Every available endpoint was tried already: a retry may go to one of them again.
        for (std::size_t i = 0; i < n; ++i) {
            infos_[i].available = panic || Cluster::available(*endpoints_[i].endpoint, now_ms);
        }
    }
    const int index = balancer_->pick(infos_, ctx);
    // A custom policy's answer is checked: the engine indexes with it.
    if (index < 0 || static_cast<std::size_t>(index) >= n ||
        !infos_[static_cast<std::size_t>(index)].available) {
        return {};
    }
    return {index, panic};
}

std::uint32_t LocalCluster::share(std::uint32_t limit) const noexcept {
    const unsigned reactors = cluster_->reactor_count();
    return static_cast<std::uint32_t>((std::uint64_t{limit} + reactors - 1) / reactors);
}

bool LocalCluster::can_open_connection() const noexcept {
    return connections < share(cluster_->options().circuit_breaker.max_connections);
}

bool LocalCluster::can_queue() const noexcept {
    return pending < share(cluster_->options().circuit_breaker.max_pending_requests);
}

bool LocalCluster::can_start_request() const noexcept {
    return requests < share(cluster_->options().circuit_breaker.max_requests);
}

// The budget, like every limit here, is the cluster's split between reactors: this reactor
// may have percent% of its own requests in flight as retries, and at least its share of
// min_retry_concurrency, so a quiet cluster can still retry.
bool LocalCluster::can_retry() const noexcept {
    const UpstreamOptions& o = cluster_->options();
    if (retries >= share(o.circuit_breaker.max_retries)) {
        return false;
    }
    if (!o.retry_budget.enabled) {
        return true;
    }
    const std::uint64_t budget =
        std::max<std::uint64_t>(share(o.retry_budget.min_retry_concurrency),
                                std::uint64_t{requests} * o.retry_budget.percent / 100);
    return retries < budget;
}

}  // namespace blitz::upstream
