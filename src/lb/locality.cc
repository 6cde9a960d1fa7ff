#include "lb/locality.h"

#include <algorithm>

namespace gatehouse::lb {

double localShare(const LocalityPolicy& p, size_t available, size_t configured,
                  size_t remote_available) {
  if (available == 0) return 0.0;
  if (remote_available == 0 || p.min_healthy <= 0.0) return 1.0;
  const double healthy =
      static_cast<double>(available) / static_cast<double>(std::max(configured, available));
  return std::min(1.0, healthy / p.min_healthy);
}

LocalityBalancer::LocalityBalancer(const LoadBalancerFactory& inner, const HostSet& view,
                                   const LocalityPolicy& policy,
                                   const std::vector<uint32_t>& configured_local)
    : places_(view.hosts.size()) {
  HostSet subsets[2];
  const int64_t now = steadyNowNs();
  size_t local_up = 0;
  std::vector<char> priority_seen;
  for (size_t i = 0; i < view.hosts.size(); ++i) {
    const Host& h = view.hosts[i];
    const uint8_t side = h.zone == policy.local_zone ? 0 : 1;
    // In panic the view holds hosts that are down: they count as neither zone's capacity.
    const bool up = !h.health || h.health->available(now);
    if (side == 0 && up) ++local_up;
    if (h.priority >= priority_seen.size()) priority_seen.resize(h.priority + 1, 0);
    priority_seen[h.priority] = 1;
    places_[i] = {side, static_cast<int>(subsets[side].hosts.size())};
    subsets[side].hosts.push_back(h);
    sides_[side].to_view.push_back(static_cast<int>(i));
  }
  size_t configured = 0;
  for (size_t p = 0; p < priority_seen.size() && p < configured_local.size(); ++p) {
    if (priority_seen[p]) configured += configured_local[p];
  }
  const size_t remote = subsets[1].hosts.size();
  share_ = subsets[0].hosts.empty() ? 0.0 : localShare(policy, local_up, configured, remote);
  if (remote == 0 && !subsets[0].hosts.empty()) share_ = 1.0;  // nowhere else to go
  for (int s = 0; s < 2; ++s) {
    if (!subsets[s].hosts.empty()) sides_[s].lb = inner.create(subsets[s]);
  }
}

int LocalityBalancer::pickFrom(Side& s, const PickContext& ctx) {
  if (!s.lb) return -1;
  const int k = s.lb->pick(ctx);
  if (k < 0 || static_cast<size_t>(k) >= s.to_view.size()) return -1;
  return s.to_view[static_cast<size_t>(k)];
}

int LocalityBalancer::pick(const PickContext& ctx) {
  credit_ += share_;
  bool local = false;
  if (credit_ >= 1.0) {
    credit_ -= 1.0;
    local = true;
  }
  const int v = pickFrom(sides_[local ? 0 : 1], ctx);
  if (v >= 0) return v;
  return pickFrom(sides_[local ? 1 : 0], ctx);
}

void LocalityBalancer::onStart(int host) {
  if (host < 0 || static_cast<size_t>(host) >= places_.size()) return;
  const Place& p = places_[static_cast<size_t>(host)];
  if (sides_[p.side].lb) sides_[p.side].lb->onStart(p.index);
}

void LocalityBalancer::onEnd(int host, std::chrono::nanoseconds latency, bool success) {
  if (host < 0 || static_cast<size_t>(host) >= places_.size()) return;
  const Place& p = places_[static_cast<size_t>(host)];
  if (sides_[p.side].lb) sides_[p.side].lb->onEnd(p.index, latency, success);
}

void LocalityBalancer::onAbandon(int host, std::chrono::nanoseconds latency) {
  if (host < 0 || static_cast<size_t>(host) >= places_.size()) return;
  const Place& p = places_[static_cast<size_t>(host)];
  if (sides_[p.side].lb) sides_[p.side].lb->onAbandon(p.index, latency);
}

LocalityFactory::LocalityFactory(LoadBalancerFactoryPtr inner, LocalityPolicy policy,
                                 const HostSet& hosts)
    : inner_(std::move(inner)), policy_(std::move(policy)) {
  for (const Host& h : hosts.hosts) {
    if (h.zone != policy_.local_zone) continue;
    if (h.priority >= configured_local_.size()) configured_local_.resize(h.priority + 1, 0);
    ++configured_local_[h.priority];
  }
}

std::unique_ptr<LoadBalancer> LocalityFactory::create(const HostSet& view) const {
  return std::make_unique<LocalityBalancer>(*inner_, view, policy_, configured_local_);
}

}  // namespace gatehouse::lb
