// swinrt errors: one exception type whose message names the file, tensor or
// case at fault and what was expected. Commands print it and exit 1.
#pragma once

#include <stdexcept>
#include <string>

namespace swinrt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace swinrt
