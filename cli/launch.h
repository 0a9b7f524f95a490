// avey train --nproc-per-node N: starts N training processes on this machine, one per GPU, as
// torchrun does, and waits for them (docs/distributed.md).
//
// Each worker is this same command with the same flags (it sees RANK in its environment, so it
// trains instead of launching), and RANK = LOCAL_RANK = its number, WORLD_SIZE =
// LOCAL_WORLD_SIZE = N, MASTER_ADDR (127.0.0.1 unless set), MASTER_PORT (a free port unless set)
// and OMP_NUM_THREADS (cores / N unless set). Rank 0 prints; the others' output is dropped, but
// each worker's error line is kept (AVEY_ERROR_FILE, written by main.cpp), and when rank 0 did
// not fail with an error line of its own, the first failed rank's is shown, "[rank r] ...".
//
// SIGINT and SIGTERM reach each worker once, through this process (the workers have a process
// group of their own, so a terminal's Ctrl-C does not reach them twice): they stop after the
// step in progress with a checkpoint, as one process does (cli/stop_signal.h). When a worker
// fails, the others get 5 s to end, then SIGTERM, and SIGKILL 30 s later. If this process dies,
// its workers get SIGTERM. The exit code: rank 0's when it failed, else the first failure's, else 0.
#pragma once
#include <cstdint>
#include <optional>

#include "engine/dist/placement.h"
#include "engine/dtype.h"

// The placement of engine/dist/placement.h, its errors as one UsageError line.
engine::dist::Placement placement_from_launcher();

// argc, argv: the subcommand's ("train", flags...). Returns nullopt when this process is to
// train itself: nproc is 1, or a launcher started it (then nproc, when given, must match its
// LOCAL_WORLD_SIZE); else runs the workers and returns the exit code.
std::optional<int> launch_workers(int64_t nproc, engine::Device device, int argc, char** argv);
