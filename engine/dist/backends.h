// The backends behind connect() (communicator.h), for world > 1.
#pragma once
#include <memory>

#include "engine/dist/communicator.h"

namespace engine::dist {

std::unique_ptr<Communicator> tcp_communicator(const Placement& place);  // tcp_communicator.cpp
#ifdef AVEY_HAVE_NCCL
std::unique_ptr<Communicator> nccl_communicator(const Placement& place);  // nccl_communicator.cpp
#endif

}  // namespace engine::dist
