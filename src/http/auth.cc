#include "http/auth.h"

namespace sluice::http {

Status KeyStore::Add(std::string_view spec, Role role) {
  size_t colon = spec.find(':');
  const char* kind = role == Role::kWrite ? "write" : "read";
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == spec.size()) {
    return Status::InvalidArgument(std::string(kind) + " key \"" + std::string(spec) +
                                   "\" is not NAME:SECRET (e.g. --" + kind +
                                   "-key web:3f9a1c...)");
  }
  std::string name(spec.substr(0, colon));
  std::string secret(spec.substr(colon + 1));
  if (secret.size() < 8) {
    return Status::InvalidArgument(std::string(kind) + " key \"" + name +
                                   "\" has a secret shorter than 8 characters; use a long "
                                   "random one (e.g. openssl rand -hex 16)");
  }
  if (Find(secret) != nullptr) {
    return Status::InvalidArgument("the secret of " + std::string(kind) + " key \"" + name +
                                   "\" is already used by another key; each key needs its own");
  }
  keys_.push_back(Key{std::move(name), std::move(secret), role});
  return Status::OK();
}

bool KeyStore::HasRole(Role role) const {
  for (const auto& k : keys_) {
    if (k.role == role) return true;
  }
  return false;
}

const Key* KeyStore::Find(std::string_view secret) const {
  const Key* found = nullptr;
  for (const auto& k : keys_) {
    // Constant time for equal lengths, so timing does not reveal a matching prefix.
    if (k.secret.size() != secret.size()) continue;
    unsigned char diff = 0;
    for (size_t i = 0; i < secret.size(); ++i) {
      diff |= static_cast<unsigned char>(k.secret[i] ^ secret[i]);
    }
    if (diff == 0) found = &k;
  }
  return found;
}

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6) return std::nullopt;  // a dangling sextet is not valid base64
  return out;
}

std::optional<std::string> CredentialFromHeader(const Request& req) {
  auto auth = req.Header("authorization");
  if (!auth) return std::nullopt;
  std::string_view v = *auth;
  auto starts_with_ci = [&](std::string_view prefix) {
    if (v.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(v[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (starts_with_ci("bearer ")) {
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return std::string(v);
  }
  if (starts_with_ci("basic ")) {
    v.remove_prefix(6);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    auto decoded = Base64Decode(v);
    if (!decoded) return std::string();  // present but unusable: fails the lookup
    size_t colon = decoded->find(':');
    std::string user = decoded->substr(0, colon);
    // Some clients put the key in the password with an empty user name.
    if (user.empty() && colon != std::string::npos) return decoded->substr(colon + 1);
    return user;
  }
  return std::string();
}

std::optional<Response> CheckReadAccess(const KeyStore* keys, const Request& req) {
  if (keys == nullptr || keys->empty()) return std::nullopt;
  std::optional<std::string> secret = CredentialFromHeader(req);
  if (!secret || secret->empty()) {
    return Response::Error(
        401,
        "missing read key: send it as 'Authorization: Bearer KEY' (or the HTTP Basic user "
        "name)");
  }
  const Key* key = keys->Find(*secret);
  if (key == nullptr) return Response::Error(401, "unknown read key");
  if (key->role != Role::kRead) return Response::Error(403, "a write key cannot read");
  return std::nullopt;
}

}  // namespace sluice::http
