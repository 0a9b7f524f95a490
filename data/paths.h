// Where a data path's files are. A path names a file, a folder (every file under it, at any
// depth, with one of the wanted extensions) or a glob pattern ('*', '?', '[...]': the files it
// matches, e.g. 'fineweb/*_train_*.bin' quoted so the shell leaves it alone). The files come back
// in natural order: runs of digits compare as numbers, so chapter_2 comes before chapter_10.
#pragma once
#include <string>
#include <vector>

namespace data {

// The files of path (a file is itself, whatever its extension; a folder keeps the files whose
// extension is in `extensions`, e.g. {".txt", ".jsonl"}). Throws one line when nothing is found.
std::vector<std::string> expand_path(const std::string& path, const std::vector<std::string>& extensions);

}  // namespace data
