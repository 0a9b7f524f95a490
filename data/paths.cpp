// expand_path: files, folders (recursively) and glob(3) patterns, in natural order.
#include "data/paths.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

namespace data {

namespace fs = std::filesystem;

namespace {

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i0 = i, j0 = j;
      while (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]))) ++i;
      while (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]))) ++j;
      std::string x = a.substr(i0, i - i0), y = b.substr(j0, j - j0);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

bool is_glob(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

}  // namespace

std::vector<std::string> expand_path(const std::string& path, const std::vector<std::string>& extensions) {
  std::vector<std::string> files;
  if (is_glob(path)) {
    glob_t g{};
    int rc = ::glob(path.c_str(), GLOB_NOSORT, nullptr, &g);
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i)
      if (fs::is_regular_file(g.gl_pathv[i])) files.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (files.empty()) throw std::runtime_error("no file matches " + path);
  } else if (fs::is_regular_file(path)) {
    return {path};
  } else if (fs::is_directory(path)) {
    for (const auto& entry : fs::recursive_directory_iterator(path))
      if (entry.is_regular_file() &&
          std::find(extensions.begin(), extensions.end(), entry.path().extension().string()) != extensions.end())
        files.push_back(entry.path().string());
    if (files.empty()) {
      std::string wanted;
      for (const auto& e : extensions) wanted += (wanted.empty() ? "*" : " or *") + e;
      throw std::runtime_error("folder " + path + " holds no " + wanted + " files");
    }
  } else {
    throw std::runtime_error("no such file or folder: " + path);
  }
  std::sort(files.begin(), files.end(), natural_less);
  return files;
}

}  // namespace data
