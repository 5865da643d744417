// Write and read keys, and how a request presents one.
//
// A key is configured as "NAME:SECRET": the secret is what clients send, the name is what
// Sluice records (the event's `source`) and logs. Clients present a secret as the HTTP Basic
// user name (Segment style; the password is ignored), as `Authorization: Bearer SECRET`, or
// (ingest only) as "writeKey" in the JSON body. A write key cannot read and a read key cannot
// write.
//
// Concurrency: KeyStore is filled before the server starts and only read afterwards.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/http.h"

namespace sluice::http {

enum class Role { kWrite, kRead };

struct Key {
  std::string name;
  std::string secret;
  Role role;
};

class KeyStore {
 public:
  // Adds "NAME:SECRET". InvalidArgument with a sentence when it is malformed, when the secret
  // is shorter than 8 characters, or when the secret is already configured.
  Status Add(std::string_view spec, Role role);
  bool empty() const { return keys_.empty(); }
  bool HasRole(Role role) const;
  // The key whose secret equals `secret`, compared in constant time per key; nullptr if none.
  const Key* Find(std::string_view secret) const;

 private:
  std::vector<Key> keys_;
};

// The secret presented in the Authorization header (Basic user name, or Bearer token), if any.
std::optional<std::string> CredentialFromHeader(const Request& req);

// The read-key check of the query, stats and dashboard endpoints (DESIGN.md "HTTP"): nullopt
// when `req` may read — no key configured (`keys` null or empty), or a read key presented —
// otherwise the answer to send: 401 for no or an unknown key, 403 for a write key.
std::optional<Response> CheckReadAccess(const KeyStore* keys, const Request& req);

// Encodes `in` as standard base64 with padding (e.g. for an HTTP Basic header).
std::string Base64Encode(std::string_view in);
// Decodes standard base64; nullopt when `in` is not base64.
std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace sluice::http
