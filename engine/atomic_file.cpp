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
// A writer may seek back (e.g. to fill in a header's count): the digest is then read back from
// the file (moved()).
class DigestBuf : public std::streambuf {
 public:
  explicit DigestBuf(int fd) : fd_(fd), buf_(kDigestPiece) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return err_; }  // errno of the first failed write or seek, 0 if none
  bool moved() const { return moved_; }
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

  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    const bool tell = off == 0 && dir == std::ios_base::cur;  // tellp(): nothing moves
    if (!tell && !write_piece()) return pos_type(off_type(-1));
    const off_t at = ::lseek(fd_, tell ? 0 : off, dir == std::ios_base::beg ? SEEK_SET : dir == std::ios_base::cur ? SEEK_CUR : SEEK_END);
    if (at < 0) {
      err_ = errno;
      return pos_type(off_type(-1));
    }
    moved_ |= !tell;
    return pos_type(at + (pptr() - pbase()));
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    return seekoff(off_type(pos), std::ios_base::beg, which);
  }

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
  bool moved_ = false;
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
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create the temporary file " + tmp + " (" + reason(errno) + ")");
  // Until the rename, leaving this function (a throw included) closes and removes the temporary file.
  struct Temporary {
    const std::string& path;
    int fd;
    bool renamed = false;
    ~Temporary() {
      if (fd >= 0) ::close(fd);
      if (!renamed) std::remove(path.c_str());
    }
  } temporary{tmp, fd};
  auto failure = [&](const std::string& what, int err) { return std::runtime_error(path + ": " + what + " (" + reason(err) + ")"); };
  DigestBuf buf(fd);
  {
    std::ostream out(&buf);
    write(out);
  }
  if (buf.error() || !buf.finish()) throw failure("write failed", buf.error());
  if (::fsync(fd) != 0) throw failure("cannot sync the file to the disk", errno);
  temporary.fd = -1;
  if (::close(fd) != 0) throw failure("write failed", errno);
  const FileDigest digest = buf.moved() ? digest_file(tmp) : buf.digest();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw failure("cannot move the temporary file into place", errno);
  temporary.renamed = true;
  sync_folder(parent_of(path));
  return digest;
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
