// A progress line on stderr for long jobs (tokenising a corpus, evaluating a validation set):
// redrawn in place on a terminal (at most 5 times a second), one full line every 30 seconds
// when stderr is a file or a pipe (logs), and a last line when the job is done.
//
//   Progress progress("prepare");
//   progress.update(bytes_done / double(bytes_total), "12/300 files | 8.1M tokens");
//   progress.finish("300 files | 95.2M tokens");
#pragma once
#include <chrono>
#include <string>

namespace data {

std::string format_duration(double seconds);  // "45s", "3m07s", "2h05m"; "?" when unknown

class Progress {
 public:
  explicit Progress(std::string label);  // an empty label: prints nothing

  // fraction: the share of the job done, in [0, 1] (the ETA is the time so far scaled by it).
  void update(double fraction, const std::string& status);
  void finish(const std::string& status);  // the last line, with the total time
  double elapsed() const;                  // seconds since construction

 private:
  std::string label_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

// Seconds per item fitted as a + b x by least squares over the items done, for the ETA of work
// whose items differ in size (needle-in-a-haystack prompts of 1K to 1M tokens: avey niah).
class CostFit {
 public:
  void add(double x, double seconds);
  double predict(double x) const;  // -1 (unknown) until an item is done

 private:
  double n_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0;
};

}  // namespace data
