// Bulk loading and unloading of the event log.
//
// ImportFile reads Segment-format events, one JSON object per line (gzip-compressed or not;
// detected from the content), validates each line as /v1/batch validates an item, and stores
// the valid ones through the shards, so dedupe and sequencing are the same as for live traffic.
// Progress (percent of the file read, events, rate, ETA) goes to `progress` every 0.2 s on a
// terminal or every 5 s otherwise.
//
// ExportEvents writes one workspace's events as NDJSON, in sequence (commit) order. It reads
// through a Store follower when a server is running on the directory. Thread-safety: one call at a
// time per ShardSet/Store as documented there.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/segment_parser.h"
#include "common/clock.h"
#include "shard/shard_set.h"
#include "storage/store.h"

namespace whisperer::server {

struct ImportOptions {
  std::string file;
  size_t lines_per_batch = 2000;
  std::ostream* progress = nullptr;  // null: no progress output
  bool progress_is_terminal = false;
  // When set (by a signal, say), reading stops: the lines read are written, then the import
  // answers Cancelled `interrupted`.
  const std::atomic<bool>* stop = nullptr;
  // Loading into a scratch store that goes afterwards (`whisperer replay`): errors do not
  // speak of what was kept.
  bool scratch = false;
};

struct ImportSummary {
  uint64_t lines = 0;  // non-blank lines read
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t suppressed = 0;  // of erased customers who asked not to be tracked: not stored
  uint64_t rejected = 0;
  // The first rejected lines (1-based line number and reason), at most 20.
  std::vector<std::pair<uint64_t, absl::Status>> first_rejections;
};

// Imports `options.file`; `summary` counts what was read and stored, also when the import
// fails part way (a cut or corrupt gzip stream, a failed write, a signal), which the error
// answers: what was stored before it stays stored.
absl::Status ImportFile(const ImportOptions& options, api::Limits limits, shard::ShardSet* shards,
                        uint32_t workspace_id, const Clock* clock, ImportSummary* summary);

// The size of `file` (ImportFile's first check, which the commands make before they open or
// create a data directory): NotFound `file_not_found` when there is none, InvalidArgument
// `invalid_argument` when it is no regular file (a directory, a pipe, a device).
absl::StatusOr<uint64_t> ImportFileSize(const std::string& file);

// Writes the summary a person reads after an import.
void PrintImportSummary(const ImportSummary& summary, std::ostream& out);

// Writes every event of `workspace_id` as one line of JSON; returns how many.
absl::StatusOr<uint64_t> ExportEvents(const storage::Store& store, uint32_t workspace_id,
                                      std::ostream& out);

}  // namespace whisperer::server
