#include "common/metrics.h"

#include <cmath>
#include <fmt/format.h>

#include "common/status.h"

namespace sluice::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) {
    sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
  }
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

double Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return 0;
  double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(seen + counts[i]) >= rank) {
      double lo = i == 0 ? 0 : bounds[i - 1];
      double hi = i < bounds.size() ? bounds[i] : lo * 2;
      double frac = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return bounds.empty() ? 0 : bounds.back();
}

std::vector<double> LatencyBounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01,
          0.015,   0.02,   0.03,    0.05,   0.1,   0.25,  0.5,   1,     2.5,   5,    10};
}

CallbackHandle& CallbackHandle::operator=(CallbackHandle&& o) noexcept {
  if (this != &o) {
    if (registry_) registry_->RemoveCallback(id_);
    registry_ = std::exchange(o.registry_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

CallbackHandle::~CallbackHandle() {
  if (registry_) registry_->RemoveCallback(id_);
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

Registry::Family& Registry::FamilyFor(std::string_view name, std::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}, {}})
             .first;
  }
  SLUICE_CHECK_MSG(it->second.type == type, std::string(name));
  return it->second;
}

Counter& Registry::GetCounter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kCounter).counters[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::GetGauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kGauge).gauges[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  const Labels& labels, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kHistogram).histograms[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return *slot;
}

CallbackHandle Registry::AddGaugeCallback(std::string_view name, std::string_view help,
                                          const Labels& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  uint64_t id = next_callback_id_++;
  FamilyFor(name, help, Type::kGauge).callbacks[id] = {FormatLabels(labels), std::move(fn)};
  return CallbackHandle(this, id);
}

void Registry::RemoveCallback(uint64_t id) {
  std::lock_guard lock(mu_);
  for (auto& [name, fam] : families_) fam.callbacks.erase(id);
}

namespace {
std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}
// Inserts `le` into an already formatted label set.
std::string WithLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}
}  // namespace

std::string Registry::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    const char* type = fam.type == Type::kCounter ? "counter"
                       : fam.type == Type::kGauge ? "gauge"
                                                  : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name, type);
    for (const auto& [l, c] : fam.counters) out += fmt::format("{}{} {}\n", name, l, c->Value());
    for (const auto& [l, g] : fam.gauges) out += fmt::format("{}{} {}\n", name, l, g->Value());
    for (const auto& [id, cb] : fam.callbacks) {
      out += fmt::format("{}{} {}\n", name, cb.first, Num(cb.second()));
    }
    for (const auto& [l, h] : fam.histograms) {
      auto s = h->Snap();
      uint64_t cum = 0;
      for (size_t i = 0; i < s.counts.size(); ++i) {
        cum += s.counts[i];
        std::string le = i < s.bounds.size() ? Num(s.bounds[i]) : "+Inf";
        out += fmt::format("{}_bucket{} {}\n", name, WithLe(l, le), cum);
      }
      out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, l, Num(s.sum), name, l, s.count);
    }
  }
  return out;
}

Registry& Default() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace sluice::metrics
