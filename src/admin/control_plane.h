#pragma once
// What the admin API's write and operation endpoints ask of the server (server/ implements it;
// admin/ sits below server/ and sees only this). Every call runs on the control thread.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "admin/generations.h"

namespace gatehouse::admin {

// One reason a config was refused, as the loader or the snapshot builder reported it.
struct ConfigProblem {
  std::string file;
  int line = 0;  // 0 = no position
  int column = 0;
  std::string path;  // YAML path; empty = none
  std::string message;
};

struct ApplyResult {
  enum class Kind {
    kApplied,        // now serving, and written back to the file
    kValid,          // dry run: would be applied
    kInvalid,        // refused by validation (nothing changed)
    kNotApplicable,  // e.g. a listener could not be bound (nothing changed)
    kNoFile,         // no config file to write (demo mode): refused
  };
  Kind kind = Kind::kInvalid;
  std::vector<ConfigProblem> problems;
  uint64_t generation_before = 0;
  uint64_t generation_after = 0;  // == before unless applied
};

enum class DrainResult { kDone, kNoCluster, kNoHost };

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;
  // The running config's generation, its file and the text it was loaded from.
  virtual uint64_t configGeneration() const = 0;
  virtual std::string configPath() const = 0;
  virtual std::string configText() const = 0;
  // Validates `yaml` exactly as a reload would; unless `dry_run`, swaps it in (the same
  // snapshot publication as a reload) and writes it to the config file (temp file, fsync,
  // rename). `origin` names the generation's cause in the history ("api PUT", "rollback 3").
  virtual ApplyResult applyConfig(const std::string& yaml, bool dry_run,
                                  const std::string& origin) = 0;
  virtual const GenerationRing& generations() const = 0;
  // Marks a host drained (no new requests) or back in service.
  virtual DrainResult setHostDrained(const std::string& cluster, const std::string& host,
                                     bool drained) = 0;
  // Reopens the access log file (as SIGUSR1); empty on success, else the error.
  virtual std::string reopenLogs() = 0;
};

}  // namespace gatehouse::admin
