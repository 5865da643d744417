#include "common/metrics.h"

#include <algorithm>
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

bool Histogram::Snapshot::Add(const Snapshot& other) {
  if (bounds.empty() && counts.empty()) {
    *this = other;
    return true;
  }
  if (other.bounds != bounds) return false;
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
  return true;
}

Histogram::Snapshot Histogram::Snapshot::Since(const Snapshot& earlier) const {
  Snapshot d = *this;
  if (earlier.bounds != bounds) return d;
  d.count = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    d.counts[i] = counts[i] >= earlier.counts[i] ? counts[i] - earlier.counts[i] : 0;
    d.count += d.counts[i];
  }
  d.sum = std::max(0.0, sum - earlier.sum);
  return d;
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
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}, false})
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
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    FamilyFor(name, help, Type::kGauge).has_callbacks = true;  // and its HELP and TYPE lines
    id = next_callback_id_++;
  }
  std::lock_guard lock(callbacks_mu_);
  callbacks_[id] = {std::string(name), FormatLabels(labels), std::move(fn)};
  return CallbackHandle(this, id);
}

void Registry::RemoveCallback(uint64_t id) {
  std::lock_guard lock(callbacks_mu_);
  callbacks_.erase(id);
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
  // The callbacks' values first, under callbacks_mu_ only (see the lock order in the header).
  std::map<std::string, std::vector<std::pair<std::string, double>>, std::less<>> called;
  {
    std::lock_guard lock(callbacks_mu_);
    for (const auto& [id, cb] : callbacks_) called[cb.name].emplace_back(cb.labels, cb.fn());
  }
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    const char* type = fam.type == Type::kCounter ? "counter"
                       : fam.type == Type::kGauge ? "gauge"
                                                  : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name, type);
    for (const auto& [l, c] : fam.counters) out += fmt::format("{}{} {}\n", name, l, c->Value());
    for (const auto& [l, g] : fam.gauges) out += fmt::format("{}{} {}\n", name, l, g->Value());
    if (auto c = called.find(name); c != called.end()) {
      for (const auto& [l, v] : c->second) out += fmt::format("{}{} {}\n", name, l, Num(v));
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

namespace {
// Whether the rendered label set `rendered` ({a="x",b="y"}) holds every pair of `match`.
bool LabelsMatch(const std::string& rendered, const Labels& match) {
  for (const auto& pair : match) {
    const std::string one = FormatLabels({pair});  // {a="x"}
    const std::string_view inner(one.data() + 1, one.size() - 2);
    size_t pos = 0;
    bool found = false;
    while ((pos = rendered.find(inner, pos)) != std::string::npos) {
      const char before = pos > 0 ? rendered[pos - 1] : '\0';
      const size_t end = pos + inner.size();
      const char after = end < rendered.size() ? rendered[end] : '\0';
      if ((before == '{' || before == ',') && (after == '}' || after == ',')) {
        found = true;
        break;
      }
      pos = end;
    }
    if (!found) return false;
  }
  return true;
}
}  // namespace

void Registry::ForEachValue(std::string_view name, const Labels& match,
                            const std::function<void(double)>& fn) const {
  bool has_callbacks;
  {
    std::lock_guard lock(mu_);
    auto it = families_.find(name);
    if (it == families_.end()) return;
    const Family& fam = it->second;
    has_callbacks = fam.has_callbacks;
    for (const auto& [l, c] : fam.counters) {
      if (LabelsMatch(l, match)) fn(static_cast<double>(c->Value()));
    }
    for (const auto& [l, g] : fam.gauges) {
      if (LabelsMatch(l, match)) fn(static_cast<double>(g->Value()));
    }
  }
  // Counters and plain gauges never wait for a callback of another family.
  if (!has_callbacks) return;
  std::lock_guard lock(callbacks_mu_);
  for (const auto& [id, cb] : callbacks_) {
    if (cb.name == name && LabelsMatch(cb.labels, match)) fn(cb.fn());
  }
}

double Registry::Sum(std::string_view name, const Labels& match) const {
  double total = 0;
  ForEachValue(name, match, [&total](double v) { total += v; });
  return total;
}

double Registry::Max(std::string_view name, const Labels& match) const {
  bool any = false;
  double best = 0;
  ForEachValue(name, match, [&](double v) {
    best = any ? std::max(best, v) : v;
    any = true;
  });
  return best;
}

Histogram::Snapshot Registry::MergedHistogram(std::string_view name, const Labels& match) const {
  std::lock_guard lock(mu_);
  Histogram::Snapshot merged;
  auto it = families_.find(name);
  if (it == families_.end()) return merged;
  for (const auto& [l, h] : it->second.histograms) {
    if (LabelsMatch(l, match)) merged.Add(h->Snap());
  }
  return merged;
}

Registry& Default() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace sluice::metrics
