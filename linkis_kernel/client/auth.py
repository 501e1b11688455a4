"""Login password encryption for gateways with `wds.linkis.login_encrypt.enable=true`."""

from __future__ import annotations

import base64

from .errors import LinkisAuthError


def encrypt_password(password: str, public_key_b64: str) -> str:
    """RSA/PKCS#1 v1.5-encrypt `password` with the gateway's key; return it base64-encoded.

    `public_key_b64` is `user/publicKey`'s `data.publicKey`: base64 of the X.509
    SubjectPublicKeyInfo DER (docs/linkis-rest.md, "Authentication").
    """
    try:
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
        from cryptography.hazmat.primitives.serialization import load_der_public_key
    except ImportError:
        raise LinkisAuthError(
            "This Linkis gateway encrypts login passwords with RSA, which needs the "
            "'cryptography' package",
            hint="Install it with: pip install 'linkis-kernel[rsa]'.",
        ) from None
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(key, RSAPublicKey):
            raise TypeError(f"{type(key).__name__} is no RSA key")
        ciphertext = key.encrypt(password.encode("utf-8"), padding.PKCS1v15())
    except (ValueError, TypeError, AttributeError) as exc:
        raise LinkisAuthError(
            f"Could not use the gateway's login public key ({type(exc).__name__})",
            hint="Check that LINKIS_URL points at a Linkis gateway, or ask its admin to check "
            "wds.linkis.login_encrypt.enable.",
        ) from None
    return base64.b64encode(ciphertext).decode("ascii")
