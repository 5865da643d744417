#include "event/quote.h"

namespace sluice::event {

std::string QuoteForMessage(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = text.size() < max_bytes ? text.size() : max_bytes;
  std::string q;
  q.reserve(n + 8);
  q += '"';
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      q += '\\';
      q += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      q += "\\u00";
      q += kHex[c >> 4];
      q += kHex[c & 0xf];
    } else {
      q += static_cast<char>(c);
    }
  }
  q += '"';
  if (n < text.size()) q += "...";
  return q;
}

}  // namespace sluice::event
