// Writing a file so that no reader (and no crash, kill -9 or power cut) ever sees half of it:
//   1. the content goes to a temporary file beside `path` (its name carries the process id),
//      through a 1 MiB buffer that also computes the content's digest (engine/checksum.h);
//   2. the file is fsync'ed (its data is on the disk), then renamed over `path` in one step;
//   3. the folder holding it is fsync'ed (the new name is on the disk too).
// On any failure (a full disk, a read-only folder) the temporary file is removed, `path` is
// untouched, and one std::runtime_error names `path` and the system's reason.
// Checkpoints, shards, safetensors, optimizer states and plots are all written this way.
#pragma once
#include <functional>
#include <ostream>
#include <string>

#include "engine/checksum.h"

namespace engine {

// `write` fills the stream; returns the size and checksum of what was written.
FileDigest write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
FileDigest write_file_atomic(const std::string& path, const std::string& content);

// fsync of a folder: the names created, renamed or removed in it reach the disk.
void sync_folder(const std::string& dir);
// fsync of a file another stream appended to (e.g. a log): its data reach the disk.
void sync_file(const std::string& path);

// Moves a finished folder `from` to `to` (which must not exist) and makes it durable: `from`'s
// entries are fsync'ed first, then the rename, then the parent folder.
void commit_folder(const std::string& from, const std::string& to);

}  // namespace engine
