// Writing a file so that no reader (and no crash) ever sees half of it: the content goes to a
// temporary file beside `path` (its name carries the process id), is flushed, and is renamed
// over `path` in one step. On any failure the temporary file is removed and `path` is untouched.
// Checkpoints, shards, safetensors, optimizer states and plots are all written this way.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace engine {

// `write` fills the stream; throws std::runtime_error naming `path` if anything fails.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace engine
