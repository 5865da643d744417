#include "objstore/object_store.h"

#include "objstore/azure_blob.h"
#include "objstore/local_dir.h"
#include "objstore/s3.h"

namespace sluice::objstore {

namespace {

Result<std::unique_ptr<ObjectStore>> OpenS3(const std::string& url, const ObjectStoreOptions& o) {
  // The flags win over the environment.
  EnvLookup env = [&o](const std::string& name) -> std::optional<std::string> {
    if (!o.endpoint.empty() && (name == "AWS_ENDPOINT_URL_S3" || name == "AWS_ENDPOINT_URL")) {
      return o.endpoint;
    }
    if (!o.region.empty() && (name == "AWS_REGION" || name == "AWS_DEFAULT_REGION")) {
      return o.region;
    }
    return ProcessEnv(name);
  };
  SLUICE_ASSIGN_OR_RETURN(S3Options so, S3OptionsFromUrl(url, env));
  if (o.multipart_threshold != 0) so.multipart_threshold = o.multipart_threshold;
  if (o.part_size != 0) so.part_size = o.part_size;
  if (o.parallel_parts != 0) so.parallel_parts = o.parallel_parts;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<S3> s3, S3::Open(so));
  if (Status st = s3->CheckBucket(); !st.ok()) {
    return st.WithContext("object store " + s3->Url() + ": cannot list the bucket");
  }
  return std::unique_ptr<ObjectStore>(std::move(s3));
}

Result<std::unique_ptr<ObjectStore>> OpenAzure(const std::string& url,
                                               const ObjectStoreOptions& o) {
  SLUICE_ASSIGN_OR_RETURN(AzureBlobOptions ao, AzureBlobOptionsFromUrl(url));
  if (!o.endpoint.empty()) ao.endpoint = o.endpoint;
  if (o.multipart_threshold != 0) ao.single_put_max_bytes = o.multipart_threshold;
  if (o.part_size != 0) ao.block_size = o.part_size;
  if (o.parallel_parts != 0) ao.upload_parallelism = o.parallel_parts;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<AzureBlob> az, AzureBlob::Open(ao));
  // One List Blobs request of the manifest: the container exists and the key may read it.
  if (auto listed = az->List("_manifest/"); !listed.ok()) {
    return listed.status().WithContext("object store " + az->Url() + ": cannot list the container");
  }
  return std::unique_ptr<ObjectStore>(std::move(az));
}

}  // namespace

Result<std::unique_ptr<ObjectStore>> MakeObjectStore(const std::string& url,
                                                     const ObjectStoreOptions& options) {
  if (url.empty()) {
    return Status::InvalidArgument(
        "object store URL is empty: expected file:///DIR, a directory path, s3://BUCKET or "
        "az://CONTAINER");
  }
  if (options.parallel_parts < 0 || options.parallel_parts > 64) {
    return Status::InvalidArgument("--object-store-parallel must be between 1 and 64");
  }
  if (url.starts_with("s3://")) return OpenS3(url, options);
  if (url.starts_with("az://")) return OpenAzure(url, options);
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
  } else if (size_t colon = url.find("://"); colon != std::string::npos) {
    return Status::InvalidArgument("object store " + url.substr(0, colon) +
                                   "://...: unknown scheme; expected file:///DIR, a directory "
                                   "path, s3://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX] (GCS, "
                                   "MinIO and R2 through s3:// with --object-store-endpoint)");
  } else {
    dir = url;
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<LocalDir> store, LocalDir::Open(dir));
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace sluice::objstore
