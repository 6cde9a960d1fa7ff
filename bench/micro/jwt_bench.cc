// jwt_auth's request-headers phase for RS256 and ES256 tokens: cold (every request verifies the
// signature: cache_size 0) against warm (the verified-token cache answers: SHA-256 of the token
// plus one hash lookup per request).
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <memory>
#include <string>

#include "http/filter.h"
#include "policies/jwt_auth/jwt.h"

namespace gatehouse {
namespace {

using policies::jwt::base64UrlEncode;

struct Signer {
  std::string pem;    // public key
  std::string token;  // a valid token signed by the private key
};

std::string sign(EVP_PKEY* key, bool ec, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EVP_DigestSign(md.get(), nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
  sig.resize(len);
  if (!ec) return sig;
  // DER ECDSA-Sig-Value -> R || S (32 bytes each), as JWS wants.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(es);
  return raw;
}

Signer makeSigner(bool ec) {
  EVP_PKEY* key = ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  Signer s;
  s.pem.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() +
                   3600;
  std::string header =
      base64UrlEncode(ec ? R"({"alg":"ES256","kid":"k"})" : R"({"alg":"RS256","kid":"k"})");
  std::string payload = base64UrlEncode(
      R"({"iss":"https://idp.test/","aud":"api","sub":"bench-user","scope":"read write",)"
      R"("exp":)" +
      std::to_string(exp) + "}");
  std::string input = header + "." + payload;
  s.token = input + "." + base64UrlEncode(sign(key, ec, input));
  EVP_PKEY_free(key);
  return s;
}

void run(benchmark::State& state, bool ec, bool warm) {
  const Signer signer = makeSigner(ec);
  YAML::Node cfg;
  cfg["keys"][0]["kid"] = "k";
  cfg["keys"][0]["pem"] = signer.pem;
  cfg["issuers"].push_back("https://idp.test/");
  cfg["audiences"].push_back("api");
  cfg["scopes"].push_back("read");
  cfg["cache_size"] = warm ? 1000 : 0;
  auto factory = http::findPolicy("jwt_auth")->build(cfg);
  if (!factory.ok()) {
    state.SkipWithError(factory.error().message.c_str());
    return;
  }
  const std::string bearer = "Bearer " + signer.token;
  http::RequestContext ctx;
  for (auto _ : state) {
    ctx.request.headers.clear();
    ctx.request.headers.add("authorization", bearer);
    http::FilterRef f = (*factory)->create();
    http::Verdict v = f.filter->onRequestHeaders(ctx);
    if (v != http::Verdict::kContinue) {
      state.SkipWithError("token refused");
      return;
    }
    benchmark::DoNotOptimize(ctx.consumer.data());
  }
}

void BM_JwtAuth_RS256_Cold(benchmark::State& s) {
  run(s, false, false);
}
void BM_JwtAuth_RS256_Warm(benchmark::State& s) {
  run(s, false, true);
}
void BM_JwtAuth_ES256_Cold(benchmark::State& s) {
  run(s, true, false);
}
void BM_JwtAuth_ES256_Warm(benchmark::State& s) {
  run(s, true, true);
}
BENCHMARK(BM_JwtAuth_RS256_Cold);
BENCHMARK(BM_JwtAuth_RS256_Warm);
BENCHMARK(BM_JwtAuth_ES256_Cold);
BENCHMARK(BM_JwtAuth_ES256_Warm);

}  // namespace
}  // namespace gatehouse
