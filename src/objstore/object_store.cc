#include "objstore/object_store.h"

#include "objstore/local_dir.h"

namespace sluice::objstore {

Result<std::unique_ptr<ObjectStore>> MakeObjectStore(const std::string& url) {
  if (url.empty()) {
    return Status::InvalidArgument(
        "object store URL is empty: expected file:///DIR or a directory path");
  }
  std::string dir;
  if (url.starts_with("file://")) {
    dir = url.substr(7);
    // RFC 8089 allows an explicit local host.
    if (dir.starts_with("localhost/")) dir = dir.substr(9);
    if (!dir.starts_with("/")) {
      return Status::InvalidArgument("object store URL \"" + url +
                                     "\": a file:// URL names an absolute directory, e.g. "
                                     "file:///var/lib/sluice/objects (three slashes)");
    }
  } else if (url.starts_with("s3://") || url.starts_with("az://")) {
    // Remote URLs are not echoed: they may carry credentials.
    const std::string scheme = url.substr(0, url.find(':'));
    const std::string name = scheme == "s3" ? "S3" : "Azure Blob Storage";
    return Status::InvalidArgument("object store " + scheme + "://...: " + name +
                                   " is not supported yet; use file:///DIR or a directory "
                                   "path");
  } else if (size_t colon = url.find("://"); colon != std::string::npos) {
    return Status::InvalidArgument("object store " + url.substr(0, colon) +
                                   "://...: unknown scheme; expected file:///DIR or a "
                                   "directory path (s3:// and az:// come later)");
  } else {
    dir = url;
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<LocalDir> store, LocalDir::Open(dir));
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace sluice::objstore
