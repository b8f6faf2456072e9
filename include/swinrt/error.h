// swinrt errors: one exception type whose message names the file, tensor or
// case at fault and what was expected. Commands print it and exit 1.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace swinrt {

// `text` as valid UTF-8 without control characters: bytes that are not part
// of a well-formed UTF-8 sequence, and control characters other than newline
// and tab, become \xNN. Messages quote names and fields read from damaged
// files; this keeps them readable on a terminal and decodable by the scripts
// that run swinrt.
std::string printable_message(std::string_view text);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(printable_message(what)) {}
  explicit Error(const char* what) : std::runtime_error(printable_message(what)) {}
};

}  // namespace swinrt
