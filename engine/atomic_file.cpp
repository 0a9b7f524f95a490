#include "engine/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <streambuf>
#include <vector>

namespace engine {

namespace {

std::string reason(int err) { return std::strerror(err); }

std::string parent_of(const std::string& path) {
  std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// An output buffer over a file descriptor that writes whole kDigestPiece pieces (and the rest at
// finish()), adding each to the checksum, so the digest equals one update over the whole file.
class DigestBuf : public std::streambuf {
 public:
  explicit DigestBuf(int fd) : fd_(fd), buf_(kDigestPiece) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return err_; }  // errno of the first failed write, 0 if none
  FileDigest digest() const { return {bytes_, sum_.h}; }
  bool finish() { return write_piece(); }

 protected:
  int_type overflow(int_type c) override {
    if (!write_piece()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  // A flush request writes nothing early: pieces stay whole until finish(), which the fsync follows.
  int sync() override { return 0; }

 private:
  bool write_piece() {
    const char* p = pbase();
    size_t left = size_t(pptr() - pbase());
    sum_.update(p, left);
    bytes_ += left;
    while (left > 0) {
      ssize_t w = ::write(fd_, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        err_ = w < 0 ? errno : ENOSPC;
        return false;
      }
      p += w;
      left -= size_t(w);
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return true;
  }

  int fd_;
  std::vector<char> buf_;
  Checksum sum_{kFileDigestStart};
  uint64_t bytes_ = 0;
  int err_ = 0;
};

void fsync_path(const std::string& path, int flags, const std::string& what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(what + ": cannot open " + path + " to sync it (" + reason(errno) + ")");
  int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(what + ": cannot sync " + path + " to the disk (" + reason(err) + ")");
}

}  // namespace

FileDigest write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create the temporary file " + tmp + " (" + reason(errno) + ")");
  auto give_up = [&](const std::string& what, int err) {
    ::close(fd);
    std::remove(tmp.c_str());
    return std::runtime_error(path + ": " + what + " (" + reason(err) + ")");
  };
  DigestBuf buf(fd);
  try {
    std::ostream out(&buf);
    write(out);
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (buf.error() || !buf.finish()) throw give_up("write failed", buf.error());
  if (::fsync(fd) != 0) throw give_up("cannot sync the file to the disk", errno);
  if (::close(fd) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": write failed (" + reason(err) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot move the temporary file into place (" + reason(err) + ")");
  }
  sync_folder(parent_of(path));
  return buf.digest();
}

FileDigest write_file_atomic(const std::string& path, const std::string& content) {
  return write_file_atomic(path, [&](std::ostream& out) { out.write(content.data(), std::streamsize(content.size())); });
}

void sync_folder(const std::string& dir) { fsync_path(dir, O_RDONLY | O_DIRECTORY, dir); }

void sync_file(const std::string& path) { fsync_path(path, O_RDONLY, path); }

void commit_folder(const std::string& from, const std::string& to) {
  sync_folder(from);
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw std::runtime_error(to + ": cannot move " + from + " into place (" + reason(errno) + ")");
  sync_folder(parent_of(to));
}

}  // namespace engine
