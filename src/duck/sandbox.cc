#include "duck/sandbox.h"

namespace sluice::duck {

Status ApplySandbox(Connection& conn, const SandboxOptions& options) {
  std::string dirs = "[";
  for (size_t i = 0; i < options.allowed_directories.size(); ++i) {
    std::string d = options.allowed_directories[i];
    if (d.empty() || d.back() != '/') d += '/';
    dirs += (i ? ", " : "") + QuoteLiteral(d);
  }
  dirs += "]";
  std::string sql = "SET GLOBAL allowed_directories = " + dirs +
                    "; SET GLOBAL autoinstall_known_extensions = false"
                    "; SET GLOBAL autoload_known_extensions = false"
                    "; SET GLOBAL memory_limit = " + QuoteLiteral(options.memory_limit) +
                    "; SET GLOBAL enable_external_access = false"
                    "; SET GLOBAL lock_configuration = true";
  return conn.Exec(sql).WithContext("applying the DuckDB sandbox");
}

}  // namespace sluice::duck
