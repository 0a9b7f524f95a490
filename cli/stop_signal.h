// SIGINT (Ctrl-C) and SIGTERM while training: the first one asks the loop to stop after the step
// in progress, save a checkpoint and exit; a second one ends the process at once (the
// checkpoints on disk are whole either way: run_folder.h).
#pragma once

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the ones before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int received() const;  // the signal asked for, or 0
};
