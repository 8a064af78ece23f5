/* crypto.c - SHA-256, HMAC, random bytes, the key file and AES-256-GCM
 * sealing, all on OpenSSL's EVP interface. */
#include "crypto.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define KEY_LEN 32
#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define SEAL_OVERHEAD (1 + NONCE_LEN + TAG_LEN)
/* A key file is 32 raw bytes or 44 base64 characters and a newline or two;
 * reading a little more than that is enough to tell a wrong size. */
#define KEY_FILE_MAX 128

struct o7_sha256 {
    EVP_MD_CTX *ctx;
};

/* ---- hashing ------------------------------------------------------------- */

o7_sha256 *o7_sha256_new(void)
{
    o7_sha256 *h = malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL) {
        free(h);
        return NULL;
    }
    /* SHA-256 with a fresh context fails only when OpenSSL itself is broken. */
    O7_ASSERT(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1);
    return h;
}

void o7_sha256_update(o7_sha256 *h, const void *data, size_t len)
{
    if (len > 0)
        O7_ASSERT(EVP_DigestUpdate(h->ctx, data, len) == 1);
}

void o7_sha256_final_hex(o7_sha256 *h, char hex[65])
{
    unsigned char md[32];
    O7_ASSERT(EVP_DigestFinal_ex(h->ctx, md, NULL) == 1);
    o7_hex(md, sizeof md, hex);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void o7_sha256_raw(const void *data, size_t len, unsigned char out[32])
{
    O7_ASSERT(EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1);
}

void o7_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    o7_sha256_raw(data, len, md);
    o7_hex(md, sizeof md, hex);
}

void o7_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                    unsigned char out[32])
{
    unsigned int outlen = 0;
    O7_ASSERT(keylen <= INT_MAX);
    O7_ASSERT(HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) != NULL);
    O7_ASSERT(outlen == 32);
}

void o7_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

o7_rc o7_random(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return O7_ERR_CRYPTO;
        p += chunk;
        n -= (size_t)chunk;
    }
    return O7_OK;
}

void o7_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* ---- the key file -------------------------------------------------------- */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Strict standard base64 (padding required). Returns the decoded length, or
 * -1 when the text is not base64 or does not fit in cap. */
static long b64_decode(const unsigned char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t pad = (in[len - 1] == '=') + (in[len - 2] == '=');
    size_t n = len / 4 * 3 - pad;
    if (n > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            int is_pad = in[i + j] == '=' && i + 4 == len && j >= 4 - (int)pad;
            v[j] = is_pad ? 0 : b64_value(in[i + j]);
            if (v[j] < 0)
                return -1;
        }
        unsigned long quad = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                             (unsigned long)v[2] << 6 | (unsigned long)v[3];
        unsigned char bytes[3] = {quad >> 16 & 0xff, quad >> 8 & 0xff, quad & 0xff};
        for (int j = 0; j < 3 && o < n; j++)
            out[o++] = bytes[j];
    }
    return (long)n;
}

/* The key is 32 raw bytes, or the base64 of them with trailing whitespace. */
static o7_rc key_parse(const char *path, unsigned char *text, size_t len, unsigned char key[32],
                       o7_err *err)
{
    if (len == KEY_LEN) {
        memcpy(key, text, KEY_LEN);
        return O7_OK;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        len--;
    unsigned char raw[KEY_FILE_MAX];
    long n = b64_decode(text, len, raw, sizeof raw);
    if (n == KEY_LEN)
        memcpy(key, raw, KEY_LEN);
    o7_wipe(raw, sizeof raw);
    if (n == KEY_LEN)
        return O7_OK;
    return o7_fail(err, O7_ERR_CRYPTO,
                   "key file %s is not a key: it must hold exactly 32 bytes, raw or as "
                   "base64 (44 characters)",
                   path);
}

static o7_rc key_read(const char *path, int fd, unsigned char key[32], o7_err *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return o7_fail(err, O7_ERR_CRYPTO, "cannot check key file %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return o7_fail(err, O7_ERR_CRYPTO, "key file %s is not a regular file", path);
    /* Group or other access means someone else may read or replace the key. */
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        return o7_fail(err, O7_ERR_CRYPTO,
                       "key file %s is open to group or others (mode %04o); make it "
                       "readable by its owner only (chmod 600)",
                       path, (unsigned)(sb.st_mode & 07777));

    unsigned char text[KEY_FILE_MAX + 1];
    size_t len = 0;
    while (len < sizeof text) {
        ssize_t n = read(fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            o7_wipe(text, sizeof text);
            return o7_fail(err, O7_ERR_CRYPTO, "cannot read key file %s: %s", path,
                           strerror(errno));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    o7_rc rc = len > KEY_FILE_MAX
                   ? o7_fail(err, O7_ERR_CRYPTO,
                             "key file %s is too large to be a key: it must hold exactly 32 "
                             "bytes, raw or as base64",
                             path)
                   : key_parse(path, text, len, key, err);
    o7_wipe(text, sizeof text);
    return rc;
}

/* Creates every missing folder above path with mode 0700. */
static o7_rc key_make_parents(const char *path, o7_err *err)
{
    size_t len = strlen(path);
    char *dir = malloc(len + 1);
    if (dir == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    memcpy(dir, path, len + 1);
    o7_rc rc = O7_OK;
    for (size_t i = 1; i < len && rc == O7_OK; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0700) == 0) {
            if (chmod(dir, 0700) != 0) /* mkdir's mode went through the umask */
                rc = o7_fail(err, O7_ERR_CRYPTO, "cannot set the mode of folder %s: %s", dir,
                             strerror(errno));
        } else if (errno != EEXIST) {
            rc = o7_fail(err, O7_ERR_CRYPTO, "cannot create folder %s for the key file: %s", dir,
                         strerror(errno));
        }
        dir[i] = '/';
    }
    free(dir);
    return rc;
}

static o7_rc key_write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return O7_ERR_IO;
        p += n;
        len -= (size_t)n;
    }
    return O7_OK;
}

/* Writes 32 fresh random bytes into a new file at tmp (mode 0600). */
static o7_rc key_write_new(const char *path, const char *tmp, unsigned char fresh[32], o7_err *err)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return o7_fail(err, O7_ERR_CRYPTO, "cannot create key file %s: %s", path, strerror(errno));
    o7_rc rc = o7_random(fresh, KEY_LEN);
    if (rc != O7_OK) {
        o7_fail(err, rc, "no random bytes for a new key file %s", path);
    } else if (fchmod(fd, 0600) != 0 || key_write_all(fd, fresh, KEY_LEN) != O7_OK ||
               fsync(fd) != 0) {
        rc = o7_fail(err, O7_ERR_CRYPTO, "cannot write key file %s: %s", path, strerror(errno));
    }
    if (close(fd) != 0 && rc == O7_OK)
        rc = o7_fail(err, O7_ERR_CRYPTO, "cannot write key file %s: %s", path, strerror(errno));
    return rc;
}

/* Syncs the folder holding path, so a new name in it survives a crash. */
static o7_rc key_sync_folder(const char *path, o7_err *err)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = fd >= 0 && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (!ok)
        return o7_fail(err, O7_ERR_CRYPTO, "cannot sync folder %s of the key file: %s", dir,
                       strerror(saved));
    return O7_OK;
}

/* Makes a fresh key file. It is written under a temporary name and linked
 * into place, so nobody ever reads half a key, and two o7 starting at once
 * agree on one key. Returns O7_ERR_BUSY (without a sentence) when another
 * process made the file first, so the caller reads that one instead. */
static o7_rc key_create(const char *path, unsigned char key[32], o7_err *err)
{
    o7_rc rc = key_make_parents(path, err);
    if (rc != O7_OK)
        return rc;
    unsigned char rnd[8];
    char hex[17], tmp[PATH_MAX];
    if (o7_random(rnd, sizeof rnd) != O7_OK)
        return o7_fail(err, O7_ERR_CRYPTO, "no random bytes for a new key file %s", path);
    o7_hex(rnd, sizeof rnd, hex);
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, hex);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return o7_fail(err, O7_ERR_CRYPTO, "key file path %s is too long", path);

    unsigned char fresh[KEY_LEN];
    rc = key_write_new(path, tmp, fresh, err);
    if (rc == O7_OK && link(tmp, path) != 0) {
        if (errno == EEXIST)
            rc = O7_ERR_BUSY;
        else
            rc =
                o7_fail(err, O7_ERR_CRYPTO, "cannot create key file %s: %s", path, strerror(errno));
    }
    unlink(tmp);
    if (rc == O7_OK)
        rc = key_sync_folder(path, err);
    if (rc == O7_OK) {
        memcpy(key, fresh, KEY_LEN);
        o7_warn("crypto",
                "created a new key file %s; keep a copy: without it the saved "
                "store tokens cannot be opened",
                path);
    }
    o7_wipe(fresh, sizeof fresh);
    return rc;
}

o7_rc o7_key_load(const char *path, unsigned char key[32], o7_err *err)
{
    if (path == NULL || path[0] == '\0')
        return o7_fail(err, O7_ERR_CONFIG, "no key file is configured ([crypto] key_file)");
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            o7_rc rc = key_read(path, fd, key, err);
            close(fd);
            return rc;
        }
        if (errno != ENOENT)
            return o7_fail(err, O7_ERR_CRYPTO, "cannot open key file %s: %s", path,
                           strerror(errno));
        o7_rc rc = key_create(path, key, err);
        if (rc != O7_ERR_BUSY)
            return rc;
    }
    return o7_fail(err, O7_ERR_CRYPTO, "key file %s keeps appearing and vanishing", path);
}

/* ---- sealing ------------------------------------------------------------- */

/* The version byte is authenticated too, so a future format cannot be passed
 * off as this one. */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const unsigned char *version, const char *aad, int decrypt)
{
    int n;
    int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
        decrypt ? EVP_DecryptUpdate : EVP_EncryptUpdate;
    if (update(ctx, NULL, &n, version, 1) != 1)
        return 0;
    size_t len = aad ? strlen(aad) : 0;
    if (len > INT_MAX)
        return 0;
    return len == 0 || update(ctx, NULL, &n, (const unsigned char *)aad, (int)len) == 1;
}

o7_rc o7_seal(const unsigned char key[32], const void *plain, size_t len, const char *aad,
              unsigned char **out, size_t *outlen, o7_err *err)
{
    *out = NULL;
    *outlen = 0;
    if (len > INT_MAX - SEAL_OVERHEAD)
        return o7_fail(err, O7_ERR_CRYPTO, "a value of %zu bytes is too large to seal", len);
    unsigned char *buf = malloc(len + SEAL_OVERHEAD);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (buf == NULL || ctx == NULL) {
        free(buf);
        EVP_CIPHER_CTX_free(ctx);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }

    buf[0] = SEAL_VERSION;
    unsigned char *nonce = buf + 1, *ct = buf + 1 + NONCE_LEN, *tag = ct + len;
    int n = 0, fin = 0;
    /* A random 96-bit nonce per seal: the key seals few values, so the
     * chance of a repeat stays far below any concern. */
    int ok = o7_random(nonce, NONCE_LEN) == O7_OK &&
             EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
             gcm_aad(ctx, buf, aad, 0) && EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) == 1 &&
             EVP_EncryptFinal_ex(ctx, ct + n, &fin) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok || (size_t)n + (size_t)fin != len) {
        o7_wipe(buf, len + SEAL_OVERHEAD);
        free(buf);
        return o7_fail(err, O7_ERR_CRYPTO, "sealing a value failed inside OpenSSL");
    }
    *out = buf;
    *outlen = len + SEAL_OVERHEAD;
    return O7_OK;
}

o7_rc o7_open(const unsigned char key[32], const unsigned char *sealed, size_t len, const char *aad,
              char **out, size_t *outlen, o7_err *err)
{
    *out = NULL;
    *outlen = 0;
    if (len < SEAL_OVERHEAD || len > INT_MAX)
        return o7_fail(err, O7_ERR_CRYPTO, "the sealed value is %zu bytes, not a sealed value",
                       len);
    if (sealed[0] != SEAL_VERSION)
        return o7_fail(err, O7_ERR_CRYPTO,
                       "the sealed value has format version %u; this o7 reads version %d",
                       (unsigned)sealed[0], SEAL_VERSION);
    size_t ctlen = len - SEAL_OVERHEAD;
    const unsigned char *nonce = sealed + 1, *ct = sealed + 1 + NONCE_LEN, *tag = ct + ctlen;
    char *plain = malloc(ctlen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (plain == NULL || ctx == NULL) {
        free(plain);
        EVP_CIPHER_CTX_free(ctx);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }

    unsigned char tagcopy[TAG_LEN]; /* OpenSSL's ctrl takes a non-const pointer */
    memcpy(tagcopy, tag, TAG_LEN);
    int n = 0, fin = 0;
    int ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
             gcm_aad(ctx, sealed, aad, 1) &&
             EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, ct, (int)ctlen) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tagcopy) == 1 &&
             EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok || (size_t)n + (size_t)fin != ctlen) {
        o7_wipe(plain, ctlen + 1);
        free(plain);
        return o7_fail(err, O7_ERR_CRYPTO,
                       "the sealed value does not open: wrong key, wrong owner, or changed");
    }
    plain[ctlen] = '\0';
    *out = plain;
    *outlen = ctlen;
    return O7_OK;
}
