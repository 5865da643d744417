#include "bench/event_generator.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "common/status.h"

namespace sluice::bench {
namespace {

// SplitMix64: tiny, fast, and the same on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix(state_ += 0x9e3779b97f4a7c15ULL); }
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return Next() % n; }
  int Between(int lo, int hi) {
    const auto span = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo + 1);
    return lo + static_cast<int>(Below(span));
  }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  template <typename T, size_t N>
  const T& Pick(const std::array<T, N>& a) {
    return a[Below(N)];
  }

 private:
  uint64_t state_;
};

constexpr char kHex[] = "0123456789abcdef";

void PutHex(uint64_t v, size_t digits, char* out) {
  for (size_t i = digits; i-- > 0;) {
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
}

std::string RandomHex(Rng& rng, size_t digits) {
  std::string s(digits, '0');
  for (size_t i = 0; i < digits; i += 16)
    PutHex(rng.Next(), std::min<size_t>(16, digits - i), s.data() + i);
  return s;
}

// A version-4-shaped UUID (for anonymousIds): xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V in 8..b.
std::string RandomUuid(Rng& rng) {
  const uint64_t hi = rng.Next(), lo = rng.Next() >> 2;
  std::string id(36, '-');
  PutHex(hi >> 32, 8, id.data());
  PutHex(hi >> 16, 4, id.data() + 9);
  PutHex(0x4000 | (hi & 0x0fff), 4, id.data() + 14);
  PutHex(0x8000 | ((lo >> 48) & 0x3fff), 4, id.data() + 19);
  PutHex(lo, 12, id.data() + 24);
  return id;
}

// Appends JSON with commas placed automatically. Strings written here are escaped.
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& Key(std::string_view k) {
    Comma();
    String(k);
    out_->push_back(':');
    after_key_ = true;
    return *this;
  }
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Str(std::string_view v) {
    Comma();
    String(v);
  }
  void Int(int64_t v) {
    Comma();
    out_->append(std::to_string(v));
  }
  void Money(double v) {  // two decimals, as prices are written
    Comma();
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, 2);
    out_->append(buf, r.ptr);
  }
  void Bool(bool v) {
    Comma();
    out_->append(v ? "true" : "false");
  }
  void Null() {
    Comma();
    out_->append("null");
  }
  // Writes the raw bytes of a key and an opening quote, leaving the string open: the caller
  // appends the value and closes it (used for the fields filled at run time).
  void OpenString(std::string_view k) {
    Key(k);
    out_->push_back('"');
    after_key_ = false;
  }

 private:
  void Comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty() && !first_.back()) out_->push_back(',');
    if (!first_.empty()) first_.back() = false;
  }
  void Open(char c) {
    Comma();
    out_->push_back(c);
    first_.push_back(true);
  }
  void Close(char c) {
    first_.pop_back();
    out_->push_back(c);
  }
  void String(std::string_view s) {
    out_->push_back('"');
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out_->push_back('\\');
        out_->push_back(c);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out_->append(buf);
      } else {
        out_->push_back(c);
      }
    }
    out_->push_back('"');
  }

  std::string* out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// ---- The shop's data ----------------------------------------------------------------------

constexpr std::array<std::string_view, 10> kUserAgents = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.6312.118 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
};

struct Locale {
  std::string_view locale, timezone, currency, country, city;
};
constexpr std::array<Locale, 8> kLocales = {{
    {"en-US", "America/New_York", "USD", "US", "New York"},
    {"en-US", "America/Los_Angeles", "USD", "US", "San Francisco"},
    {"en-GB", "Europe/London", "GBP", "GB", "London"},
    {"de-DE", "Europe/Berlin", "EUR", "DE", "Berlin"},
    {"fr-FR", "Europe/Paris", "EUR", "FR", "Paris"},
    {"nl-NL", "Europe/Amsterdam", "EUR", "NL", "Amsterdam"},
    {"es-ES", "Europe/Madrid", "EUR", "ES", "Madrid"},
    {"ja-JP", "Asia/Tokyo", "JPY", "JP", "Tokyo"},
}};

struct Device {
  std::string_view type, manufacturer, model, os, os_version;
  int width, height;
  double density;
};
constexpr std::array<Device, 6> kDevices = {{
    {"desktop", "", "", "Windows", "10", 1920, 1080, 1.0},
    {"desktop", "Apple", "MacBookPro18,3", "Mac OS X", "10.15.7", 1512, 982, 2.0},
    {"mobile", "Apple", "iPhone15,2", "iOS", "17.4.1", 393, 852, 3.0},
    {"mobile", "Google", "Pixel 8", "Android", "14", 412, 915, 2.625},
    {"tablet", "Apple", "iPad13,18", "iOS", "17.4", 820, 1180, 2.0},
    {"mobile", "samsung", "SM-S911B", "Android", "13", 360, 780, 3.0},
}};

constexpr std::array<std::string_view, 8> kCategories = {
    "Shoes", "Jackets", "Bags", "Watches", "Sunglasses", "Knitwear", "Accessories", "Outdoor"};
constexpr std::array<std::string_view, 10> kAdjectives = {
    "Classic",  "Trail",  "Urban",   "Merino",      "Waxed",
    "Everyday", "Alpine", "Vintage", "Lightweight", "Heritage"};
constexpr std::array<std::string_view, 10> kNouns = {
    "Runner",   "Parka",  "Tote",     "Chronograph", "Aviator",
    "Crewneck", "Beanie", "Backpack", "Loafer",      "Windbreaker"};
constexpr std::array<std::string_view, 6> kBrands = {"Northwind",   "Fjallstad", "Osaka Works",
                                                     "Linden & Co", "Baywater",  "Kestrel"};
constexpr std::array<std::string_view, 6> kVariants = {"Black", "Navy",     "Olive",
                                                       "Sand",  "Charcoal", "Burgundy"};
constexpr std::array<std::string_view, 6> kReferrers = {
    "https://www.google.com/",    "https://www.bing.com/",
    "https://www.instagram.com/", "https://newsletter.example-shop.com/",
    "https://www.pinterest.com/", ""};
struct Campaign {
  std::string_view name, source, medium, term, content;
};
constexpr std::array<Campaign, 5> kCampaigns = {{
    {"spring_sale_2024", "google", "cpc", "waterproof jacket", "text_ad_b"},
    {"weekly_newsletter_19", "newsletter", "email", "", "hero_banner"},
    {"summer_drop", "instagram", "social", "", "carousel_3"},
    {"brand_search", "bing", "cpc", "northwind shoes", "sitelink_sale"},
    {"retargeting_cart", "facebook", "paid_social", "", "dynamic_product"},
}};
constexpr std::array<std::string_view, 8> kSearches = {
    "rain jacket",  "leather tote",         "running shoes men", "merino beanie",
    "gift for him", "sunglasses polarized", "backpack 30l",      "chelsea boots"};
constexpr std::array<std::string_view, 8> kFirstNames = {"Ada",  "Bram",  "Chloe", "Diego",
                                                         "Emma", "Farid", "Grace", "Hiro"};
constexpr std::array<std::string_view, 8> kLastNames = {"Lovelace", "de Vries", "Martin", "Garcia",
                                                        "Schmidt",  "Haddad",   "Okafor", "Tanaka"};
constexpr std::array<std::string_view, 4> kPlans = {"free", "member", "gold", "platinum"};
constexpr std::array<std::string_view, 24> kWords = {
    "soft",     "durable", "recycled", "cotton",  "water", "resistant", "seams",   "taped",
    "crafted",  "in",      "small",    "batches", "with",  "a",         "relaxed", "fit",
    "designed", "for",     "daily",    "wear",    "and",   "weekend",   "trips",   "outdoors"};

struct Product {
  std::string id, sku, name, category, brand, variant, slug;
  double price;
};

std::string Slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '&') {
      if (!out.empty() && out.back() != '-') out.push_back('-');
    } else {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

std::vector<Product> MakeCatalog(Rng& rng, size_t n) {
  std::vector<Product> catalog;
  catalog.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Product p;
    p.id = RandomHex(rng, 24);
    p.category = std::string(rng.Pick(kCategories));
    p.brand = std::string(rng.Pick(kBrands));
    p.variant = std::string(rng.Pick(kVariants));
    p.name = std::string(rng.Pick(kAdjectives)) + " " + std::string(rng.Pick(kNouns));
    p.sku = p.category.substr(0, 3) + "-" + std::to_string(10000 + rng.Below(90000)) + "-" +
            p.variant.substr(0, 3);
    p.slug = Slug(p.name) + "-" + Slug(p.variant) + "-" + std::to_string(i);
    p.price = static_cast<double>(rng.Between(9, 349)) + 0.99;
    catalog.push_back(std::move(p));
  }
  return catalog;
}

constexpr std::string_view kSite = "https://shop.example.com";

// One visitor, as the context of their events describes them.
struct Visitor {
  std::string anonymous_id, email, first_name, last_name, ip, user_agent;
  bool identified = false;  // signed in: context.traits has their email and plan
  const Locale* locale;
  const Device* device;
  const Campaign* campaign;  // null when the visit did not come from a campaign
  std::string referrer;
};

Visitor MakeVisitor(Rng& rng) {
  Visitor v;
  v.anonymous_id = RandomUuid(rng);
  v.identified = rng.Chance(0.6);
  v.first_name = std::string(rng.Pick(kFirstNames));
  v.last_name = std::string(rng.Pick(kLastNames));
  v.email = Slug(v.first_name) + "." + Slug(v.last_name) + std::to_string(rng.Below(1000)) +
            "@example.net";
  v.ip = std::to_string(rng.Between(11, 223)) + "." + std::to_string(rng.Below(256)) + "." +
         std::to_string(rng.Below(256)) + "." + std::to_string(rng.Between(1, 254));
  v.user_agent = std::string(rng.Pick(kUserAgents));
  v.locale = &kLocales[rng.Below(kLocales.size())];
  v.device = &kDevices[rng.Below(kDevices.size())];
  v.campaign = rng.Chance(0.4) ? &kCampaigns[rng.Below(kCampaigns.size())] : nullptr;
  v.referrer = std::string(rng.Pick(kReferrers));
  return v;
}

struct Page {
  std::string path, search, title, name, category;
};

void WriteContext(JsonWriter& w, Rng& rng, const Visitor& v, const Page& page) {
  w.Key("context").BeginObject();
  w.Key("ip").Str(v.ip);
  w.Key("userAgent").Str(v.user_agent);
  w.Key("locale").Str(v.locale->locale);
  w.Key("timezone").Str(v.locale->timezone);
  w.Key("library").BeginObject();
  w.Key("name").Str("analytics.js");
  w.Key("version").Str("next-1.64.0");
  w.EndObject();
  w.Key("page").BeginObject();
  w.Key("path").Str(page.path);
  w.Key("referrer").Str(v.referrer);
  w.Key("search").Str(page.search);
  w.Key("title").Str(page.title);
  w.Key("url").Str(std::string(kSite) + page.path + page.search);
  w.EndObject();
  if (v.campaign != nullptr) {
    w.Key("campaign").BeginObject();
    w.Key("name").Str(v.campaign->name);
    w.Key("source").Str(v.campaign->source);
    w.Key("medium").Str(v.campaign->medium);
    w.Key("term").Str(v.campaign->term);
    w.Key("content").Str(v.campaign->content);
    w.EndObject();
  }
  w.Key("device").BeginObject();
  w.Key("id").Str(v.anonymous_id.substr(0, 8) + RandomHex(rng, 8));
  w.Key("type").Str(v.device->type);
  if (!v.device->manufacturer.empty()) {
    w.Key("manufacturer").Str(v.device->manufacturer);
    w.Key("model").Str(v.device->model);
  }
  w.EndObject();
  w.Key("os").BeginObject();
  w.Key("name").Str(v.device->os);
  w.Key("version").Str(v.device->os_version);
  w.EndObject();
  w.Key("screen").BeginObject();
  w.Key("width").Int(v.device->width);
  w.Key("height").Int(v.device->height);
  w.Key("density").Money(v.device->density);
  w.EndObject();
  w.Key("traits").BeginObject();
  if (v.identified) {
    w.Key("email").Str(v.email);
    w.Key("plan").Str(rng.Pick(kPlans));
  }
  w.EndObject();
  w.EndObject();
}

void WriteProduct(JsonWriter& w, const Product& p, int quantity, int position) {
  w.Key("product_id").Str(p.id);
  w.Key("sku").Str(p.sku);
  w.Key("category").Str(p.category);
  w.Key("name").Str(p.name);
  w.Key("brand").Str(p.brand);
  w.Key("variant").Str(p.variant);
  w.Key("price").Money(p.price);
  w.Key("quantity").Int(quantity);
  if (position > 0) w.Key("position").Int(position);
  w.Key("url").Str(std::string(kSite) + "/products/" + p.slug);
  w.Key("image_url").Str("https://cdn.example.com/img/" + p.id + "/800x800.jpg");
}

enum class Kind { kPage, kViewed, kClicked, kAdded, kSearched, kOrder, kIdentify };

Kind PickKind(Rng& rng, EventMix mix) {
  // Weights per 100 events on a shop's site.
  struct W {
    Kind kind;
    int web, track;
  };
  static constexpr W kWeights[] = {{Kind::kPage, 30, 0},     {Kind::kViewed, 20, 30},
                                   {Kind::kClicked, 15, 25}, {Kind::kAdded, 12, 20},
                                   {Kind::kSearched, 8, 15}, {Kind::kOrder, 5, 10},
                                   {Kind::kIdentify, 10, 0}};
  int r = static_cast<int>(rng.Below(100));
  for (const W& w : kWeights) {
    r -= mix == EventMix::kWebShop ? w.web : w.track;
    if (r < 0) return w.kind;
  }
  return Kind::kViewed;
}

// Renders one event template into *out: everything up to and including `"messageId":"`, with
// a padding field whose text is inserted afterwards. Returns the offset to insert padding at.
size_t RenderTemplate(Rng& rng, EventMix mix, const std::vector<Product>& catalog,
                      std::string* out) {
  out->clear();
  const Visitor v = MakeVisitor(rng);
  const Product& product = catalog[rng.Below(catalog.size())];
  const Kind kind = PickKind(rng, mix);

  Page page;
  switch (kind) {
    case Kind::kPage:
      if (rng.Chance(0.5)) {
        page = {"/products/" + product.slug, "", product.name + " | Example Shop", "Product",
                product.category};
      } else {
        page = {"/c/" + Slug(product.category), "", product.category + " | Example Shop",
                "Category", product.category};
      }
      break;
    case Kind::kSearched: {
      std::string q(rng.Pick(kSearches));
      std::replace(q.begin(), q.end(), ' ', '+');
      page = {"/search", "?q=" + q, "Search results | Example Shop", "Search", ""};
      break;
    }
    case Kind::kOrder:
      page = {"/checkout/confirmation", "", "Thank you | Example Shop", "Checkout", ""};
      break;
    case Kind::kIdentify:
      page = {"/account/signin", "", "Sign in | Example Shop", "Account", ""};
      break;
    default:
      page = {"/products/" + product.slug, "", product.name + " | Example Shop", "Product",
              product.category};
      break;
  }

  JsonWriter w(out);
  w.BeginObject();
  size_t padding_at = 0;
  auto padding = [&](std::string_view key) {
    w.OpenString(key);
    padding_at = out->size();
    out->push_back('"');
  };
  const bool identify = kind == Kind::kIdentify;
  const bool is_page = kind == Kind::kPage;
  w.Key("type").Str(identify ? "identify" : is_page ? "page" : "track");
  // userId is not here: it comes with the per-event tail (EventGenerator::UserFor).
  w.Key("anonymousId").Str(v.anonymous_id);

  if (identify) {
    w.Key("traits").BeginObject();
    w.Key("email").Str(v.email);
    w.Key("firstName").Str(v.first_name);
    w.Key("lastName").Str(v.last_name);
    w.Key("name").Str(v.first_name + " " + v.last_name);
    w.Key("phone").Str("+1-555-" + std::to_string(rng.Between(1000000, 9999999)));
    w.Key("plan").Str(rng.Pick(kPlans));
    w.Key("logins").Int(rng.Between(1, 300));
    w.Key("createdAt")
        .Str("2023-0" + std::to_string(rng.Between(1, 9)) + "-1" +
             std::to_string(rng.Between(0, 9)) + "T09:30:00.000Z");
    w.Key("address").BeginObject();
    w.Key("street").Str(std::to_string(rng.Between(1, 400)) + " Market Street");
    w.Key("city").Str(v.locale->city);
    w.Key("postalCode").Str(std::to_string(rng.Between(10000, 99999)));
    w.Key("country").Str(v.locale->country);
    w.EndObject();
    padding("bio");
    w.EndObject();
  } else {
    if (is_page) {
      w.Key("name").Str(page.name);
      if (!page.category.empty()) w.Key("category").Str(page.category);
    } else {
      static constexpr std::string_view kNames[] = {"",
                                                    "Product Viewed",
                                                    "Product Clicked",
                                                    "Product Added",
                                                    "Products Searched",
                                                    "Order Completed"};
      w.Key("event").Str(kNames[static_cast<int>(kind)]);
    }
    w.Key("properties").BeginObject();
    switch (kind) {
      case Kind::kPage:
        w.Key("title").Str(page.title);
        w.Key("url").Str(std::string(kSite) + page.path);
        w.Key("path").Str(page.path);
        w.Key("referrer").Str(v.referrer);
        w.Key("search").Str(page.search);
        break;
      case Kind::kViewed:
      case Kind::kClicked:
        WriteProduct(w, product, 1, kind == Kind::kClicked ? rng.Between(1, 48) : 0);
        w.Key("currency").Str(v.locale->currency);
        if (kind == Kind::kClicked) w.Key("list_id").Str("plp_" + Slug(product.category));
        break;
      case Kind::kAdded:
        w.Key("cart_id").Str(RandomHex(rng, 16));
        WriteProduct(w, product, rng.Between(1, 3), 0);
        w.Key("currency").Str(v.locale->currency);
        break;
      case Kind::kSearched:
        w.Key("query").Str(page.search.substr(3));
        w.Key("results").Int(rng.Between(0, 240));
        break;
      case Kind::kOrder: {
        w.Key("checkout_id").Str(RandomHex(rng, 20));
        w.Key("order_id").Str("ORD-" + std::to_string(rng.Between(1000000, 9999999)));
        w.Key("affiliation").Str("Online Store");
        const int items = rng.Between(1, 4);
        double subtotal = 0;
        std::vector<std::pair<const Product*, int>> lines;
        for (int i = 0; i < items; ++i) {
          const Product& p = catalog[rng.Below(catalog.size())];
          const int q = rng.Between(1, 2);
          lines.emplace_back(&p, q);
          subtotal += p.price * q;
        }
        const double discount = rng.Chance(0.3) ? 10.0 : 0.0;
        const double shipping = subtotal > 100 ? 0.0 : 4.95;
        const double tax = (subtotal - discount) * 0.2;
        w.Key("subtotal").Money(subtotal);
        w.Key("revenue").Money(subtotal - discount);
        w.Key("total").Money(subtotal - discount + shipping + tax);
        w.Key("shipping").Money(shipping);
        w.Key("tax").Money(tax);
        w.Key("discount").Money(discount);
        w.Key("coupon").Str(discount > 0 ? "WELCOME10" : "");
        w.Key("currency").Str(v.locale->currency);
        w.Key("products").BeginArray();
        for (const auto& [p, q] : lines) {
          w.BeginObject();
          WriteProduct(w, *p, q, 0);
          w.EndObject();
        }
        w.EndArray();
        break;
      }
      case Kind::kIdentify:
        break;
    }
    padding("description");
    w.EndObject();
  }
  WriteContext(w, rng, v, page);
  w.Key("integrations").BeginObject();
  w.EndObject();
  w.OpenString("messageId");  // the id and what follows are added per run and per event
  return padding_at;
}

// Appends `n` bytes of lowercase prose.
void AppendProse(Rng& rng, size_t n, std::string* out) {
  const size_t end = out->size() + n;
  while (out->size() < end) {
    std::string_view word = rng.Pick(kWords);
    word = word.substr(0, end - out->size());
    out->append(word);
    if (out->size() < end) out->push_back(' ');
  }
}

// What follows the messageId's seq in every event:
// `","userId":"usr_` + 12 hex digits + `","timestamp":"` + ts + `"}`; in gzip bodies the `"`
// after the seq is followed by spaces up to kMaxSeqDigits (see the header).
constexpr std::string_view kUserKey = "\",\"userId\":\"usr_";
constexpr size_t kUserDigits = 12;
constexpr std::string_view kTimestampKey = "\",\"timestamp\":\"";
// Tail size used to aim templates at event_bytes: a seq of a few million has 7 digits.
constexpr size_t kTypicalSeqDigits = 7;
constexpr size_t kTailBytes =
    kTypicalSeqDigits + kUserKey.size() + kUserDigits + kTimestampKey.size() + kTimestampLength + 2;

// Appends the seq of the messageId, the userId and the timestamp key (not its value); with
// `pad`, spaces after the messageId's closing quote make the seq part kMaxSeqDigits + 1 bytes
// long. Returns the number of padding spaces.
size_t AppendTailHead(uint64_t seq, uint64_t user, bool pad, std::string* out) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), seq);
  const auto n = static_cast<size_t>(end - digits);
  out->append(digits, n);
  size_t spaces = 0;
  if (pad) {
    spaces = kMaxSeqDigits > n ? kMaxSeqDigits - n : 0;
    out->push_back('"');
    out->append(spaces, ' ');
    out->append(kUserKey.substr(1));
  } else {
    out->append(kUserKey);
  }
  char user_digits[kUserDigits];
  PutHex(user, kUserDigits, user_digits);
  out->append(user_digits, kUserDigits);
  out->append(kTimestampKey);
  return spaces;
}

}  // namespace

void FormatTimestamp(int64_t wall_micros, char (&out)[kTimestampLength]) {
  using namespace std::chrono;
  const sys_time<microseconds> tp{microseconds(wall_micros)};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const auto ms_of_day = duration_cast<milliseconds>(tp - day).count();
  auto put = [&](int at, int64_t v, int width) {
    for (int i = at + width - 1; i >= at; --i) {
      out[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, static_cast<int>(ymd.year()), 4);
  out[4] = '-';
  put(5, static_cast<unsigned>(ymd.month()), 2);
  out[7] = '-';
  put(8, static_cast<unsigned>(ymd.day()), 2);
  out[10] = 'T';
  put(11, ms_of_day / 3'600'000, 2);
  out[13] = ':';
  put(14, ms_of_day / 60'000 % 60, 2);
  out[16] = ':';
  put(17, ms_of_day / 1000 % 60, 2);
  out[19] = '.';
  put(20, ms_of_day % 1000, 3);
  out[23] = 'Z';
}

std::string FormatTimestamp(int64_t wall_micros) {
  char buf[kTimestampLength];
  FormatTimestamp(wall_micros, buf);
  return std::string(buf, kTimestampLength);
}

std::string MessageId(std::string_view id_prefix, uint64_t seq) {
  std::string id(id_prefix);
  id.push_back('-');
  id.append(std::to_string(seq));
  return id;
}

bool ValidIdPrefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxIdPrefixLength) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
           c == '-';
  });
}

EventGenerator::EventGenerator(const EventGeneratorOptions& options) : options_(options) {
  SLUICE_CHECK(options_.users >= 1 && options_.users <= (uint64_t{1} << (4 * kUserDigits)));
  options_.template_count =
      std::max<size_t>(1, (options_.template_count + kChainLength - 1) / kChainLength) *
      kChainLength;
  Rng rng(Rng::Mix(options_.seed ^ 0x5eedULL));
  const std::vector<Product> catalog = MakeCatalog(rng, 200);
  SLUICE_CHECK(ValidIdPrefix(options_.id_prefix));
  const std::string id_run_part = options_.id_prefix + "-";
  templates_.resize(options_.template_count);

  // Each template aims at event_bytes ±15%; `excess` carries what earlier templates could not
  // shrink to (their natural size is above target) into later targets, so the mean holds.
  const auto target = static_cast<double>(options_.event_bytes);
  double excess = 0;
  double total = 0;
  std::string json;
  for (Template& t : templates_) {
    const size_t padding_at = RenderTemplate(rng, options_.mix, catalog, &json);
    const double own_target = target * (0.85 + 0.3 * rng.Unit());
    const double want = own_target - excess;
    const double natural = static_cast<double>(json.size() + kTailBytes);
    const size_t pad = want > natural ? static_cast<size_t>(want - natural) : 0;
    std::string padding;
    AppendProse(rng, pad, &padding);
    json.insert(padding_at, padding);
    const double size = static_cast<double>(json.size() + kTailBytes);
    excess += size - own_target;
    total += size;
    t.prefix = json;
    t.prefix += id_run_part;
  }
  mean_event_bytes_ = total / static_cast<double>(templates_.size());
  if (options_.precompress) Precompress();
}

void EventGenerator::Precompress() {
  // What sits between two templates of a chain: the tail with its unknown id, user and timestamp,
  // then the separator.
  const std::string tail = std::string(kMaxSeqDigits + 1, kGapWildcard) +
                           std::string(kUserKey.substr(1)) +
                           std::string(kUserDigits, kGapWildcard) + std::string(kTimestampKey) +
                           std::string(kTimestampLength, kGapWildcard) + "\"}";
  const int level = options_.gzip_level;
  for (size_t chain = 0; chain < templates_.size(); chain += kChainLength) {
    std::vector<std::string_view> pieces;
    for (size_t i = chain; i < chain + kChainLength; ++i) pieces.push_back(templates_[i].prefix);
    std::vector<PrecompressedSegment> batch = PrecompressChain(pieces, tail + ",", level);
    std::vector<PrecompressedSegment> ndjson = PrecompressChain(pieces, tail + "\n", level);
    for (size_t i = 0; i < kChainLength; ++i) {
      Template& t = templates_[chain + i];
      t.gzip_batch = std::move(batch[i]);
      t.gzip_ndjson = std::move(ndjson[i]);
      t.gzip_alone = ::sluice::bench::Precompress(t.prefix, level);
    }
  }
}

const EventGenerator::Template& EventGenerator::TemplateFor(BodyFormat format, uint64_t first_seq,
                                                            size_t i) const {
  if (format == BodyFormat::kSingle) {
    return templates_[Rng::Mix(first_seq ^ options_.seed) % templates_.size()];
  }
  // Multi-event bodies take whole chains in order, so chained compression stays valid.
  const size_t chains = templates_.size() / kChainLength;
  const uint64_t chain_start = first_seq + (i - i % kChainLength);
  const size_t chain = Rng::Mix(chain_start ^ options_.seed) % chains;
  return templates_[chain * kChainLength + i % kChainLength];
}

uint64_t EventGenerator::UserFor(uint64_t seq) const {
  return Rng::Mix((seq / kSessionEvents) ^ Rng::Mix(options_.seed ^ 0x05e55ULL)) % options_.users;
}

size_t EventGenerator::AppendEvent(uint64_t seq, std::string_view timestamp,
                                   std::string* out) const {
  SLUICE_CHECK(timestamp.size() == kTimestampLength);
  SLUICE_DCHECK(seq < kMaxSeq);
  const Template& t = TemplateFor(BodyFormat::kSingle, seq, 0);
  const size_t before = out->size();
  out->append(t.prefix);
  AppendTailHead(seq, UserFor(seq), /*pad=*/false, out);
  out->append(timestamp);
  out->append("\"}");
  return out->size() - before;
}

BodyBuilder::BodyBuilder(const EventGenerator& generator, BodyFormat format, bool gzip)
    : generator_(generator), format_(format), gzip_(gzip) {
  SLUICE_CHECK(!gzip || generator.Options().precompress);
}

void BodyBuilder::Tail(uint64_t seq, std::string_view ts, bool with_sent_at) {
  SLUICE_DCHECK(seq < kMaxSeq);
  tail_.clear();
  tail_padding_ = AppendTailHead(seq, generator_.UserFor(seq), gzip_, &tail_);
  tail_.append(ts);
  if (with_sent_at) {
    tail_.append("\",\"sentAt\":\"");
    tail_.append(ts);
  }
  tail_.append("\"}");
}

BodyBuilder::Built BodyBuilder::Build(uint64_t first_seq, int count, int64_t wall_micros,
                                      std::string* out) {
  if (format_ == BodyFormat::kSingle) count = 1;
  char ts_buf[kTimestampLength];
  FormatTimestamp(wall_micros, ts_buf);
  const std::string_view ts(ts_buf, kTimestampLength);

  // Plain and gzip bodies are written by the same steps: fixed text (literal) and templates.
  auto literal = [&](std::string_view s) {
    if (gzip_) {
      splicer_.Literal(s);
    } else {
      out->append(s);
    }
  };
  if (gzip_) {
    splicer_.Begin(out);
  } else {
    out->clear();
  }
  Built built;
  if (format_ == BodyFormat::kBatch) literal("{\"batch\":[");
  for (int i = 0; i < count; ++i) {
    const uint64_t seq = first_seq + static_cast<uint64_t>(i);
    const EventGenerator::Template& t =
        generator_.TemplateFor(format_, first_seq, static_cast<size_t>(i));
    if (i > 0 && format_ == BodyFormat::kBatch) literal(",");
    if (gzip_) {
      splicer_.Segment(format_ == BodyFormat::kBatch    ? t.gzip_batch
                       : format_ == BodyFormat::kNdjson ? t.gzip_ndjson
                                                        : t.gzip_alone);
    } else {
      out->append(t.prefix);
    }
    const bool sent_at = format_ == BodyFormat::kSingle;
    Tail(seq, ts, sent_at);
    literal(tail_);
    if (format_ == BodyFormat::kNdjson) literal("\n");
    built.event_bytes += t.prefix.size() + tail_.size() - tail_padding_;
    ++built.events;
  }
  if (format_ == BodyFormat::kBatch) {
    literal("],\"sentAt\":\"");
    literal(ts);
    literal("\"}");
  }
  if (gzip_) splicer_.Finish();
  return built;
}

}  // namespace sluice::bench
