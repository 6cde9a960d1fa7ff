#pragma once
// Session-ticket keys shared by every TLS listener and worker, rotated by the control thread.
// Tickets are encrypted with the newest key and accepted while their key is one of the last
// kKeep keys, so a rotation never forces full handshakes on recent clients. Handshakes read the
// key set through a per-thread copy refreshed only when the generation changes (no lock per
// handshake in the steady state).
#include <openssl/ssl.h>

#include <array>
#include <cstdint>

namespace gatehouse::net::tickets {

inline constexpr int kKeep = 3;

// Control thread: makes a new current key (the first call creates the initial set).
void rotate();
// Installs the ticket callback on a server SSL_CTX.
void install(SSL_CTX* ctx);
// How many rotations have happened (metrics, tests).
uint64_t generation();

}  // namespace gatehouse::net::tickets
