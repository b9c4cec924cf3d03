// The commands of the `whisperer` binary, wired from the modules: serve, import, export.
// Each returns when its work is done (serve: after SIGINT/SIGTERM and a graceful stop).
// Thread-safety: call from the main thread, one command per process.
#pragma once

#include <iosfwd>
#include <string>

#include "absl/status/status.h"
#include "config/config.h"

namespace whisperer::server {

// Starts the HTTP server and blocks until SIGINT or SIGTERM, then stops accepting, finishes
// requests in flight, flushes the store and returns OK. Prints the URL and keys to `out`.
absl::Status Serve(const config::Config& config, std::ostream& out);

struct ImportCommand {
  std::string file;
  std::string workspace = "default";
};
absl::Status Import(const config::Config& config, const ImportCommand& command, std::ostream& out,
                    std::ostream& progress, bool progress_is_terminal);

// Re-runs a file of events through the configured journeys on a scratch store (removed after)
// and prints each journey's funnel over the whole file as one JSON object on `out`; the import
// progress and summary go to `progress`. Journey timeouts run on the events' own times, so the
// file should be in time order. The real data directory is never touched.
struct ReplayCommand {
  std::string file;
  std::string workspace = "default";
};
absl::Status Replay(const config::Config& config, const ReplayCommand& command, std::ostream& out,
                    std::ostream& progress, bool progress_is_terminal);

struct ExportCommand {
  std::string data_dir;
  std::string workspace = "default";
  std::string out_file;  // empty: write to `out`
};
absl::Status Export(const ExportCommand& command, std::ostream& out, std::ostream& log);

// `whisperer personas discover` (server/discover.cc): clusters the workspace's stored profiles
// with k-means on their standardized behavioural features (state/personas.h), k chosen by the
// silhouette, and prints each cluster's size and the features that set it apart, each with a
// condition to start a persona rule from (`json`: one JSON object instead). Reads the data
// directory as a follower, so a server may be running on it.
struct DiscoverCommand {
  std::string data_dir;
  std::string workspace = "default";
  size_t max_k = 8;
  size_t event_names = 8;  // the most frequent event names whose counts are features
  uint64_t seed = 1;
  bool json = false;
};
absl::Status DiscoverPersonas(const DiscoverCommand& command, std::ostream& out, std::ostream& log);

// `whisperer models fit clv`: fits lifetime value (BG/NBD + Gamma-Gamma, state/models.h) on the
// stored profiles of a workspace and stores it as the next version, which a server started on
// the directory uses. Needs the directory to itself: while a server runs on it, use
// POST /v1/models/clv/fit (FailedPrecondition server_running says so).
struct FitClvCommand {
  std::string data_dir;
  std::string workspace = "default";
};
absl::Status FitClv(const FitClvCommand& command, std::ostream& out);

// `whisperer models train intent FILE.csv`: trains the message intent model (fastText,
// text/intent_model.h) on a CSV of labelled texts (RFC 4180, a header row), holding out every
// tenth example of each label to measure its accuracy, and stores it as the workspace's next
// intent version; a server started on the directory then predicts the intent of the configured
// text properties. Needs the directory to itself (FailedPrecondition server_running).
struct TrainIntentCommand {
  std::string data_dir;
  std::string workspace = "default";
  std::string file;
  std::string text_column = "text";
  std::string label_column = "label";
};
absl::Status TrainIntent(const TrainIntentCommand& command, std::ostream& out, std::ostream& log);

}  // namespace whisperer::server
