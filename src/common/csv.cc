#include "common/csv.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <simdjson.h>

#include "common/strings.h"

namespace whisperer {

bool CsvReader::Next(std::vector<std::string>* fields) {
  fields->clear();
  if (!status_.ok() || pos_ >= text_.size()) return false;
  record_line_ = line_;
  std::string field;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // the current field started with a quote
  while (pos_ < text_.size()) {
    char c = text_[pos_++];
    if (quoted) {
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          field.push_back('"');
          ++pos_;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line_;
        field.push_back(c);
      }
      continue;
    }
    if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n')) {
      if (c == '\r') ++pos_;
      ++line_;
      fields->push_back(std::move(field));
      return true;
    } else if (c == '"') {
      if (!field.empty() || was_quoted) {
        status_ = absl::InvalidArgumentError(
            ToAbsl(StrCat("line ", line_, ": a quote inside an unquoted field")));
        return false;
      }
      quoted = true;
      was_quoted = true;
    } else {
      if (was_quoted) {
        status_ = absl::InvalidArgumentError(
            ToAbsl(StrCat("line ", line_, ": text after the closing quote of a field")));
        return false;
      }
      field.push_back(c);
    }
  }
  if (quoted) {
    status_ = absl::InvalidArgumentError(
        ToAbsl(StrCat("line ", record_line_, ": a quoted field is never closed")));
    return false;
  }
  fields->push_back(std::move(field));
  return true;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(path, ": is a directory, not a file")));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string why = std::strerror(errno);
    if (errno == ENOENT) return absl::NotFoundError(ToAbsl(StrCat(path, ": ", why)));
    return absl::InternalError(ToAbsl(StrCat(path, ": ", why)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::InternalError(ToAbsl(StrCat(path, ": read failed")));
  return std::move(out).str();
}

absl::Status ReadCsvColumns(const std::string& path, const std::vector<std::string>& columns,
                            std::vector<std::vector<std::string>>* rows,
                            std::vector<size_t>* lines) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  // A UTF-8 byte order mark is not part of the first column name, quoted or not.
  CsvReader reader(StripUtf8Bom(*text));
  std::vector<std::string> header;
  if (!reader.Next(&header)) {
    if (!reader.status().ok()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(path, ": ", ToStd(reader.status().message()))));
    }
    return absl::InvalidArgumentError(ToAbsl(StrCat(path, ": empty file, expected a header")));
  }
  std::vector<size_t> index;
  for (const std::string& want : columns) {
    size_t i = 0;
    while (i < header.size() && header[i] != want) ++i;
    if (i == header.size()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(path, ": no column named '", want, "' in the header")));
    }
    if (std::find(header.begin() + static_cast<ptrdiff_t>(i) + 1, header.end(), want) !=
        header.end()) {
      return absl::InvalidArgumentError(ToAbsl(
          StrCat(path, ": the header names '", want, "' twice: which column is meant is unclear")));
    }
    index.push_back(i);
  }
  std::vector<std::string> fields;
  while (reader.Next(&fields)) {
    // A final empty line (a trailing newline already ended the last record) is not a record.
    if (fields.size() == 1 && fields[0].empty() && header.size() > 1) continue;
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(path, ": line ", reader.line(), " has ", fields.size(),
                        " fields, the header has ", header.size())));
    }
    std::vector<std::string> row;
    row.reserve(index.size());
    for (size_t k = 0; k < index.size(); ++k) {
      // What is read is stored and answered as JSON text: UTF-8 only.
      const std::string& field = fields[index[k]];
      if (!simdjson::validate_utf8(field.data(), field.size())) {
        return absl::InvalidArgumentError(ToAbsl(StrCat(path, ": line ", reader.line(), ": the ",
                                                        columns[k], " field is not valid UTF-8")));
      }
      row.push_back(field);
    }
    rows->push_back(std::move(row));
    if (lines != nullptr) lines->push_back(reader.line());
  }
  if (!reader.status().ok()) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(path, ": ", ToStd(reader.status().message()))));
  }
  return absl::OkStatus();
}

}  // namespace whisperer
