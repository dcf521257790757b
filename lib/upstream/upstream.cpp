#include <blitz/upstream.hpp>

#include <utility>

#include "upstream/cluster.hpp"

namespace blitz {

Result<std::shared_ptr<Upstream>, std::string> Upstream::make(UpstreamOptions options) {
    auto cluster = upstream::Cluster::make(std::move(options));
    if (!cluster) {
        return fail(cluster.error());
    }
    return std::make_shared<Upstream>(std::move(cluster.value()));
}

const UpstreamOptions& Upstream::options() const noexcept { return cluster_->options(); }

const std::string& Upstream::name() const noexcept { return cluster_->options().name; }

}  // namespace blitz
