#include "server/import_export.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer::server {
namespace {

std::string Format(double percent, uint64_t events, double rate, int eta_seconds) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%5.1f%%  %llu events  %.0f events/s  ETA %d:%02d", percent,
                static_cast<unsigned long long>(events), rate, eta_seconds / 60, eta_seconds % 60);
  return buf;
}

class ProgressBar {
 public:
  ProgressBar(const ImportOptions& options, uint64_t total_bytes)
      : out_(options.progress),
        label_(options.scratch ? "replay: " : "import: "),
        terminal_(options.progress_is_terminal),
        total_(total_bytes),
        start_(std::chrono::steady_clock::now()),
        last_(start_) {}

  void Update(uint64_t bytes_read, uint64_t events, bool final) {
    if (out_ == nullptr) return;
    auto now = std::chrono::steady_clock::now();
    auto interval = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
    if (!final && now - last_ < interval) return;
    last_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double fraction = total_ ? std::min(1.0, double(bytes_read) / double(total_)) : 1.0;
    double rate = elapsed > 0 ? events / elapsed : 0;
    double eta = fraction > 0 && fraction < 1 ? elapsed / fraction - elapsed : 0;
    std::string bar;
    if (terminal_) {
      int filled = static_cast<int>(fraction * 30);
      bar = StrCat("\r[", std::string(filled, '#'), std::string(30 - filled, '.'), "] ");
    } else {
      bar = label_;
    }
    *out_ << bar << Format(fraction * 100, events, rate, static_cast<int>(eta))
          << (terminal_ && !final ? "" : "\n") << std::flush;
  }

 private:
  std::ostream* out_;
  const char* label_;  // the command's name, before each line when not on a terminal
  bool terminal_;
  uint64_t total_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace

absl::StatusOr<uint64_t> ImportFileSize(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return MakeError(absl::StatusCode::kNotFound, "file_not_found",
                     StrCat("cannot read ", file, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    // Its size is what the progress is measured by, and a directory or a device has none.
    return InvalidInput("invalid_argument",
                        StrCat(file,
                               " is no regular file (a directory, a pipe or a device): "
                               "give a file of events"));
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::Status ImportFile(const ImportOptions& options, api::Limits limits, shard::ShardSet* shards,
                        uint32_t workspace_id, const Clock* clock, ImportSummary* out) {
  *out = ImportSummary();
  ImportSummary& summary = *out;
  absl::StatusOr<uint64_t> size = ImportFileSize(options.file);
  if (!size.ok()) return size.status();
  // gzread reads plain files as they are, so one path serves .ndjson and .ndjson.gz.
  gzFile file = gzopen(options.file.c_str(), "rb");
  if (file == nullptr) {
    return MakeError(absl::StatusCode::kNotFound, "file_not_found",
                     StrCat("cannot open ", options.file));
  }
  gzbuffer(file, 1 << 20);
  ProgressBar progress(options, *size);
  api::SegmentParser parser(limits);
  // Lines may be longer than the event limit only to be rejected; cap what is held in memory.
  const size_t max_line = std::max<size_t>(limits.max_event_bytes * 4, 1 << 20);

  std::vector<api::Event> batch;
  absl::Status failure;
  bool write_failed = false;  // a read failure still writes the complete lines before it
  auto flush = [&]() {
    if (batch.empty() || write_failed) return;
    shard::IngestResult r = shards->SubmitAndWait(workspace_id, std::move(batch));
    batch.clear();
    if (!r.status.ok()) {
      failure = r.status;
      write_failed = true;
      return;
    }
    summary.stored += r.stored;
    summary.duplicates += r.duplicates;
    summary.suppressed += r.suppressed;
  };
  auto reject = [&](uint64_t line_no, absl::Status status) {
    ++summary.rejected;
    if (summary.first_rejections.size() < 20) {
      summary.first_rejections.emplace_back(line_no, std::move(status));
    }
  };

  std::string buffer, line;
  std::vector<char> chunk(1 << 20);
  uint64_t line_no = 0;
  bool line_too_long = false;
  auto handle_line = [&]() {
    ++line_no;
    if (line_too_long) {
      ++summary.lines;
      reject(line_no, MakeError(absl::StatusCode::kOutOfRange, "event_too_large",
                                StrCat("the line is over ", max_line, " bytes")));
    } else {
      // A file saved as "UTF-8 with BOM" starts with one, which is no part of its first event.
      std::string_view text = line_no == 1 ? StripUtf8Bom(line) : std::string_view(line);
      // Blank: only spaces, tabs or CR (a line of them is skipped, as an empty one).
      while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
      }
      if (!text.empty()) {
        ++summary.lines;
        api::RequestInfo info{clock->NowMillis(), "", "", /*archive=*/true};
        absl::StatusOr<api::Event> event = parser.ParseLine(text, info);
        if (event.ok()) {
          batch.push_back(*std::move(event));
        } else {
          reject(line_no, event.status());
        }
      }
    }
    line.clear();
    line_too_long = false;
    if (batch.size() >= options.lines_per_batch) flush();
  };
  for (;;) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) {
      failure = MakeError(absl::StatusCode::kCancelled, "interrupted", "stopped by a signal");
      break;
    }
    int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int errnum = 0;
      const char* why = gzerror(file, &errnum);  // zlib's message starts with the path
      failure = InvalidInput("invalid_gzip", errnum == Z_ERRNO
                                                 ? StrCat(options.file, ": ", std::strerror(errno))
                                                 : std::string(why));
      break;
    }
    if (n == 0) {
      // End of input. Z_BUF_ERROR: it ended inside a gzip stream, so the file is cut short and
      // its last line is likely cut too (plain files end with Z_OK).
      int errnum = Z_OK;
      gzerror(file, &errnum);
      if (errnum == Z_BUF_ERROR) {
        failure = InvalidInput(
            "invalid_gzip",
            StrCat(options.file, ": the file ends inside its gzip stream (truncated?)"));
      }
      break;
    }
    std::string_view data(chunk.data(), n);
    while (!data.empty()) {
      size_t nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      if (!line_too_long) {
        if (line.size() + piece.size() > max_line) {
          line_too_long = true;
          line.clear();
        } else {
          line.append(piece);
        }
      }
      if (nl == std::string_view::npos) break;
      handle_line();
      data.remove_prefix(nl + 1);
    }
    progress.Update(static_cast<uint64_t>(gzoffset(file)), summary.stored + batch.size(), false);
    if (!failure.ok()) break;
  }
  if (failure.ok() && (!line.empty() || line_too_long)) handle_line();
  flush();
  gzclose(file);
  if (!failure.ok()) return failure;
  progress.Update(*size, summary.stored, true);
  return absl::OkStatus();
}

void PrintImportSummary(const ImportSummary& s, std::ostream& out) {
  out << "imported " << s.stored << " events from " << s.lines << " lines";
  if (s.duplicates) out << "; " << s.duplicates << " duplicates skipped (messageId seen before)";
  if (s.suppressed) {
    out << "; " << s.suppressed << " not stored (their customer was erased with suppress=true)";
  }
  out << "; " << s.rejected << " rejected\n";
  for (const auto& [line, status] : s.first_rejections) {
    out << "  line " << line << ": " << ErrorCodeOf(status);
    std::string field = ErrorFieldOf(status);
    if (!field.empty()) out << " (" << field << ")";
    out << ": " << status.message() << "\n";
  }
  if (s.rejected > s.first_rejections.size()) {
    out << "  ... and " << s.rejected - s.first_rejections.size() << " more\n";
  }
}

absl::StatusOr<uint64_t> ExportEvents(const storage::Store& store, uint32_t workspace_id,
                                      std::ostream& out) {
  uint64_t count = 0;
  absl::Status s = store.ScanEvents(workspace_id, 0, [&](uint64_t, std::string_view json) {
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    out.put('\n');
    ++count;
    return static_cast<bool>(out);
  });
  if (!s.ok()) return s;
  if (!out) {
    return MakeError(absl::StatusCode::kUnavailable, "cannot_write",
                     "writing the export failed (a full disk or a closed pipe?)");
  }
  return count;
}

}  // namespace whisperer::server
