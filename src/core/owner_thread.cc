#include "core/owner_thread.h"

#if GATEHOUSE_OWNER_CHECKS
#include <cstdlib>
#include <sstream>

#include "core/log.h"

namespace gatehouse {

void OwnerThread::fail(const char* what, std::thread::id owner, const char* file,
                       int line) noexcept {
  std::ostringstream os;
  os << "BUG: thread-ownership violation: '" << what << "' belongs to thread " << owner
     << " but was used on thread " << std::this_thread::get_id() << " at " << file << ":" << line
     << " (cross-thread work must go through EventLoop::post)";
  log::write(log::Level::kError, os.str());
  std::abort();
}

}  // namespace gatehouse
#endif
