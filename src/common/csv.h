// RFC 4180 CSV records, and reading a whole file.
//
// Fields are separated by commas; a field may be quoted with '"', in which case it may hold
// commas, line breaks and doubled quotes (""). Records end at LF or CRLF. Used by the model
// trainers (`whisperer models train`) and the evaluation harness (`whisperer eval`) to read
// labelled data; not on any request path.
// Thread-safety: a CsvReader is used by one thread; ReadFileToString is a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace whisperer {

class CsvReader {
 public:
  // `text` must outlive the reader.
  explicit CsvReader(std::string_view text) : text_(text) {}

  // Reads the next record into `fields` (cleared first). Returns false at the end of the text
  // or on a malformed record (then status() says why and where). An empty line is a record with
  // one empty field, as RFC 4180 reads it.
  bool Next(std::vector<std::string>* fields);

  // OK, or InvalidArgument naming the line of an unterminated quoted field or of a stray quote.
  const absl::Status& status() const { return status_; }

  // The 1-based line on which the record last returned by Next() started.
  size_t line() const { return record_line_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t record_line_ = 0;
  absl::Status status_;
};

// The whole file at `path`, or NotFound/Internal naming the path and the system's reason.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Reads a CSV file with a header row into records keyed by column: `columns` are the header
// names wanted, in the order their values are put into each row of `rows`. Fails naming the
// first missing column or one the header names twice, or the line of a record whose field
// count differs from the header's or whose wanted field is not valid UTF-8. `lines`, when given,
// gets the 1-based line each row starts on.
absl::Status ReadCsvColumns(const std::string& path, const std::vector<std::string>& columns,
                            std::vector<std::vector<std::string>>* rows,
                            std::vector<size_t>* lines = nullptr);

}  // namespace whisperer
