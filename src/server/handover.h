#pragma once
// Zero-downtime binary upgrade: the running process starts its successor and hands it its
// listening sockets (the same kernel sockets, so no accept queue is lost and no connection is
// refused) over a Unix socket with SCM_RIGHTS; the successor says READY once it serves, and the
// old process then drains and exits. Messages are SOCK_SEQPACKET datagrams:
//   old -> new: "L <kind> <worker> <key> <name>" + one fd   (a worker's listener socket)
//               "A <key>" + one fd                          (the admin listener)
//               "END"
//   new -> old: "READY <pid>"; closing the socket without it means the upgrade failed.
// Control thread only; these calls block (bounded by socket timeouts), which the control thread
// may do: no worker waits for it.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::server {

// The environment variable that carries the successor's end of the handover socket.
inline constexpr const char* kUpgradeFdEnv = "GATEHOUSE_UPGRADE_FD";

struct HandedSocket {
  enum class Kind { kListener, kAdmin };
  Kind kind = Kind::kListener;
  size_t worker = 0;  // listeners: the worker whose SO_REUSEPORT socket this is
  std::string key;    // "address:port" or "udp:address:port": what the successor matches
  std::string name;   // the listener's name, for logs
  int fd = -1;
};

// What the successor received: per listener key, the sockets in worker order.
struct InheritedSockets {
  std::map<std::string, std::vector<int>> listeners;
  int admin_fd = -1;
  std::string admin_key;
  bool empty() const { return listeners.empty() && admin_fd < 0; }
  // Removes and returns the socket for (key, worker); -1 when none was handed over.
  int take(const std::string& key, size_t worker);
  int takeAdmin(const std::string& key);
  // Closes every socket not taken.
  void closeRest();
};

// One message of the old process, without its fd.
struct HandoverMessage {
  enum class Tag { kListener, kAdmin, kEnd };
  Tag tag = Tag::kEnd;
  size_t worker = 0;  // kListener: below kMaxHandoverWorkers
  std::string key;    // kListener, kAdmin: non-empty, no spaces
  std::string name;   // kListener: may be empty or hold spaces
};
inline constexpr size_t kMaxHandoverWorkers = 4096;
// "END", "A <key>" or "L <worker> <key> [<name, to the end>]"; nullopt for anything else.
std::optional<HandoverMessage> parseHandoverMessage(std::string_view text);

// Old side: sends every socket, then END. The fds stay open here.
Status sendSockets(int sock, const std::vector<HandedSocket>& sockets);
// New side: reads until END. Received fds are close-on-exec.
Result<InheritedSockets> receiveSockets(int sock, std::chrono::milliseconds timeout);
// New side: tells the old process that it serves now.
Status sendReady(int sock);
// Parses "READY <pid>"; 0 when `msg` is not a ready message.
pid_t parseReady(std::string_view msg);

// Starts `binary` with `argv` (argv[0] included), passing `child_fd` as GATEHOUSE_UPGRADE_FD
// (the only fd it inherits besides 0-2) and an empty signal mask. Returns the child's pid.
Result<pid_t> spawnSuccessor(const std::string& binary, const std::vector<std::string>& argv,
                             int child_fd);

}  // namespace gatehouse::server
