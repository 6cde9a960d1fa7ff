#pragma once
// systemd's readiness protocol (sd_notify(3)) for a `Type=notify` unit: READY=1 once the
// listeners are bound and the workers serve, RELOADING=1 (with MONOTONIC_USEC) while a reload
// runs and READY=1 after it, STOPPING=1 when draining starts. Without $NOTIFY_SOCKET (not
// started by systemd) every call does nothing. Control thread.
//
// Why our own ~40 lines instead of libsystemd's sd_notify(): the protocol is one datagram of
// "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET ('@' = abstract
// namespace), documented as stable, and it is all we use of libsystemd; not linking it keeps
// the binary and scripts/bootstrap free of a dependency that would only ever send this.
#include <string_view>

namespace gatehouse::server::sd {

// Sends `state` ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. False when there is no socket or the
// send failed (logged at debug level; a supervisor that went away must not stop the gateway).
bool notify(std::string_view state);

void ready(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC=now (CLOCK_MONOTONIC), as Type=notify-reload requires.
void reloading();
void stopping();

}  // namespace gatehouse::server::sd
