"""Credential helpers for the authentication tests: digests, bcrypt hashes (libxcrypt through
Python's crypt module), HTTP dates and draft-cavage HMAC signatures."""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (deprecated in 3.11, still the libxcrypt binding we need)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bcrypt_hash(password: str, cost: int = 10) -> str:
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


def salted_sha256(password: str, salt: str = "s4lt") -> str:
    return f"sha256:{salt}:{hashlib.sha256((salt + password).encode()).hexdigest()}"


def http_date(offset_s: float = 0) -> str:
    return email.utils.formatdate(time.time() + offset_s, usegmt=True)


def body_digest(body: bytes, alg: str = "SHA-256") -> str:
    fn = hashlib.sha256 if alg == "SHA-256" else hashlib.sha512
    return f"{alg}={base64.b64encode(fn(body).digest()).decode()}"


def sign(method: str, target: str, headers: dict, key_id: str, secret: str,
         signed=("@request-target", "host", "date"), algorithm="hmac-sha256") -> dict:
    """Returns `headers` plus a draft-cavage Authorization: Signature header."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for h in signed:
        if h in ("@request-target", "(request-target)"):
            lines.append(f"{h}: {method.lower()} {target}")
        else:
            lines.append(f"{h}: {lower[h]}")
    digestmod = {"hmac-sha256": hashlib.sha256, "hmac-sha384": hashlib.sha384,
                 "hmac-sha512": hashlib.sha512}[algorithm]
    mac = hmac.new(secret.encode(), "\n".join(lines).encode(), digestmod).digest()
    out = dict(headers)
    out["Authorization"] = (f'Signature keyId="{key_id}",algorithm="{algorithm}",'
                            f'headers="{" ".join(signed)}",'
                            f'signature="{base64.b64encode(mac).decode()}"')
    return out


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
