/* crypto.h - hashing and secret-keeping for o7, on OpenSSL.
 *
 * SHA-256 (streaming, and hex), HMAC-SHA256, random bytes, and AES-256-GCM
 * sealing of store tokens under a key kept in a file of its own. */
#ifndef O7_CRYPTO_H
#define O7_CRYPTO_H

#include "result.h"

#include <stddef.h>
#include <stdint.h>

typedef struct o7_sha256 o7_sha256;

/** Streaming SHA-256. o7_sha256_new returns NULL when out of memory. */
o7_sha256 *o7_sha256_new(void);
void o7_sha256_update(o7_sha256 *h, const void *data, size_t len);
/** Writes 64 lower-case hex digits and a NUL into hex, and frees h. */
void o7_sha256_final_hex(o7_sha256 *h, char hex[65]);
/** One-shot helpers. */
void o7_sha256_hex(const void *data, size_t len, char hex[65]);
void o7_sha256_raw(const void *data, size_t len, unsigned char out[32]);
void o7_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                    unsigned char out[32]);
/** Lower-case hex of n bytes into out (2n+1 bytes). */
void o7_hex(const unsigned char *in, size_t n, char *out);
/** Cryptographically random bytes. */
o7_rc o7_random(void *out, size_t n);

/** The 32-byte key from path; creates it (mode 0600, folder 0700) with fresh
 * random bytes when the file does not exist. Refuses a key file that is
 * readable by group or others, or not exactly 32 bytes (base64 or raw). */
o7_rc o7_key_load(const char *path, unsigned char key[32], o7_err *err);

/** Seals plain with AES-256-GCM. *out (caller frees) holds
 * version byte | 12-byte nonce | ciphertext | 16-byte tag. aad binds the
 * sealed value to its owner (e.g. the store hash); it may be NULL. */
o7_rc o7_seal(const unsigned char key[32], const void *plain, size_t len, const char *aad,
              unsigned char **out, size_t *outlen, o7_err *err);
/** Opens what o7_seal made; *out (caller frees, NUL-terminated) holds the
 * plain bytes. Fails with O7_ERR_CRYPTO on a wrong key, aad or any change. */
o7_rc o7_open(const unsigned char key[32], const unsigned char *sealed, size_t len, const char *aad,
              char **out, size_t *outlen, o7_err *err);

/** Overwrites n bytes in a way the compiler keeps. */
void o7_wipe(void *p, size_t n);

#endif
