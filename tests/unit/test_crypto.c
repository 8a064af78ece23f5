/* test_crypto.c - published SHA-256 and HMAC vectors, sealing that refuses
 * every change, and the key file's modes and sizes. */
#include "check.h"
#include "crypto.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/o7-test-crypto-XXXXXX";

/* ---- helpers ------------------------------------------------------------- */

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    int ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, mode) == 0;
    return close(fd) == 0 && ok ? 0 : -1;
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_mode & 07777 : (mode_t)-1;
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- hashing ------------------------------------------------------------- */

TEST(sha256_vectors)
{
    char hex[65];
    o7_sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    o7_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    o7_sha256_hex(a, n, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* The same million bytes streamed in uneven pieces. */
    o7_sha256 *h = o7_sha256_new();
    CHECK(h != NULL);
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1) {
        if (step > n - off)
            step = n - off;
        o7_sha256_update(h, a + off, step);
    }
    o7_sha256_final_hex(h, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);

    unsigned char raw[32];
    char rawhex[65];
    o7_sha256_raw("abc", 3, raw);
    o7_hex(raw, sizeof raw, rawhex);
    CHECK_STR(rawhex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(hmac_rfc4231)
{
    unsigned char key1[20], mac[32];
    char hex[65];
    memset(key1, 0x0b, sizeof key1);
    o7_hmac_sha256(key1, sizeof key1, "Hi There", 8, mac);
    o7_hex(mac, sizeof mac, hex);
    CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    const char *msg2 = "what do ya want for nothing?";
    o7_hmac_sha256("Jefe", 4, msg2, strlen(msg2), mac);
    o7_hex(mac, sizeof mac, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(hex_and_random)
{
    unsigned char in[3] = {0x00, 0xa5, 0xff};
    char out[7];
    o7_hex(in, 3, out);
    CHECK_STR(out, "00a5ff");

    unsigned char r1[32], r2[32];
    CHECK_INT(o7_random(r1, sizeof r1), O7_OK);
    CHECK_INT(o7_random(r2, sizeof r2), O7_OK);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
}

/* ---- sealing ------------------------------------------------------------- */

static const char token[] = "a1b2c3d4e5f6 store token for tests";

TEST(seal_roundtrip)
{
    unsigned char key[32];
    CHECK_INT(o7_random(key, sizeof key), O7_OK);
    unsigned char *sealed = NULL, *again = NULL;
    size_t slen = 0, alen = 0, plen = 0;
    char *plain = NULL;
    o7_err err = {0};

    CHECK_INT(o7_seal(key, token, strlen(token), "store-abc", &sealed, &slen, &err), O7_OK);
    CHECK_INT(slen, 1 + 12 + strlen(token) + 16);
    CHECK_INT(sealed[0], 1);
    CHECK(memmem(sealed, slen, "store token", 11) == NULL); /* not in the clear */
    CHECK_INT(o7_open(key, sealed, slen, "store-abc", &plain, &plen, &err), O7_OK);
    CHECK_STR(plain, token);
    CHECK_INT(plen, strlen(token));

    /* A fresh nonce each time: the same value never seals the same way. */
    CHECK_INT(o7_seal(key, token, strlen(token), "store-abc", &again, &alen, &err), O7_OK);
    CHECK(alen == slen && memcmp(again, sealed, slen) != 0);
    free(sealed);
    free(again);
    free(plain);

    /* Empty value, no aad. */
    CHECK_INT(o7_seal(key, "", 0, NULL, &sealed, &slen, &err), O7_OK);
    CHECK_INT(o7_open(key, sealed, slen, NULL, &plain, &plen, &err), O7_OK);
    CHECK_INT(plen, 0);
    CHECK_STR(plain, "");
    free(sealed);
    free(plain);
}

TEST(seal_refuses_any_change)
{
    unsigned char key[32], other[32];
    CHECK_INT(o7_random(key, sizeof key), O7_OK);
    memcpy(other, key, sizeof key);
    other[31] ^= 1;
    unsigned char *sealed = NULL;
    size_t slen = 0, plen = 0;
    char *plain = NULL;
    o7_err err = {0};
    CHECK_INT(o7_seal(key, token, strlen(token), "store-abc", &sealed, &slen, &err), O7_OK);

    /* Every single bit of the sealed value, version byte to tag. */
    int opened = 0;
    for (size_t i = 0; i < slen * 8; i++) {
        sealed[i / 8] ^= (unsigned char)(1u << (i % 8));
        o7_err e = {0};
        if (o7_open(key, sealed, slen, "store-abc", &plain, &plen, &e) != O7_ERR_CRYPTO)
            opened++;
        CHECK(plain == NULL);
        free(plain);
        plain = NULL;
        sealed[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    CHECK_INT(opened, 0);

    CHECK_INT(o7_open(other, sealed, slen, "store-abc", &plain, &plen, &err), O7_ERR_CRYPTO);
    CHECK(strstr(err.msg, "does not open") != NULL);
    o7_err_clear(&err);
    CHECK_INT(o7_open(key, sealed, slen, "store-abd", &plain, &plen, &err), O7_ERR_CRYPTO);
    o7_err_clear(&err);
    CHECK_INT(o7_open(key, sealed, slen, NULL, &plain, &plen, &err), O7_ERR_CRYPTO);
    o7_err_clear(&err);
    CHECK_INT(o7_open(key, sealed, slen - 1, "store-abc", &plain, &plen, &err), O7_ERR_CRYPTO);
    o7_err_clear(&err);
    CHECK_INT(o7_open(key, sealed, 10, "store-abc", &plain, &plen, &err), O7_ERR_CRYPTO);
    CHECK(plain == NULL);

    /* And it still opens untouched. */
    CHECK_INT(o7_open(key, sealed, slen, "store-abc", &plain, &plen, &err), O7_OK);
    CHECK_STR(plain, token);
    free(plain);
    free(sealed);
}

/* ---- the key file -------------------------------------------------------- */

TEST(key_created_and_read_back)
{
    char path[128], dir[128];
    path_in_tmp(dir, sizeof dir, "new/deeper");
    path_in_tmp(path, sizeof path, "new/deeper/o7.key");
    unsigned char k1[32], k2[32], zero[32] = {0};
    o7_err err = {0};

    mode_t old = umask(0); /* the modes must not depend on the umask */
    CHECK_INT(o7_key_load(path, k1, &err), O7_OK);
    umask(old);
    if (err.rc != O7_OK)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(mode_of(dir), 0700);
    CHECK(memcmp(k1, zero, 32) != 0);

    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size == 32);
    CHECK_INT(entries_in(dir), 1); /* no temporary file left beside it */
    CHECK_INT(o7_key_load(path, k2, &err), O7_OK);
    CHECK_MEM(k1, 32, k2, 32);

    /* A key sealed with the first load opens with the second. */
    unsigned char *sealed = NULL;
    size_t slen = 0, plen = 0;
    char *plain = NULL;
    CHECK_INT(o7_seal(k1, "x", 1, NULL, &sealed, &slen, &err), O7_OK);
    CHECK_INT(o7_open(k2, sealed, slen, NULL, &plain, &plen, &err), O7_OK);
    free(sealed);
    free(plain);
}

TEST(key_modes_despite_strict_umask)
{
    /* A umask only takes bits away, so 0 cannot show a missing fchmod; one
     * that takes the owner's write and search bits can. */
    char path[128], dir[128];
    path_in_tmp(dir, sizeof dir, "strict");
    path_in_tmp(path, sizeof path, "strict/o7.key");
    unsigned char k1[32], k2[32];
    o7_err err = {0};
    mode_t old = umask(0377);
    CHECK_INT(o7_key_load(path, k1, &err), O7_OK);
    umask(old);
    CHECK_INT(mode_of(dir), 0700);
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(o7_key_load(path, k2, &err), O7_OK);
    CHECK_MEM(k1, 32, k2, 32);
}

TEST(key_base64_accepted)
{
    char path[128];
    path_in_tmp(path, sizeof path, "b64.key");
    /* base64 of the bytes 0, 1, ..., 31 */
    const char *text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    CHECK_INT(write_file(path, text, strlen(text), 0600), 0);
    unsigned char key[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (unsigned char)i;
    o7_err err = {0};
    CHECK_INT(o7_key_load(path, key, &err), O7_OK);
    CHECK_MEM(key, 32, want, 32);
}

TEST(key_open_to_others_refused)
{
    char path[128];
    path_in_tmp(path, sizeof path, "open.key");
    unsigned char raw[32], key[32];
    memset(raw, 0x42, sizeof raw);
    CHECK_INT(write_file(path, raw, sizeof raw, 0644), 0);
    CHECK_INT(mode_of(path), 0644);
    o7_err err = {0};
    CHECK_INT(o7_key_load(path, key, &err), O7_ERR_CRYPTO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(strstr(err.msg, "BBBB") == NULL); /* never the key's bytes */

    CHECK_INT(chmod(path, 0640), 0);
    o7_err_clear(&err);
    CHECK_INT(o7_key_load(path, key, &err), O7_ERR_CRYPTO);

    CHECK_INT(chmod(path, 0600), 0);
    o7_err_clear(&err);
    CHECK_INT(o7_key_load(path, key, &err), O7_OK);
    CHECK_MEM(key, 32, raw, 32);
}

TEST(key_wrong_size_refused)
{
    struct {
        const char *text;
        size_t len;
    } bad[] = {
        {"0123456789012345678901234567890", 31},                  /* raw, short */
        {"012345678901234567890123456789012", 33},                /* raw, long */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 44},     /* base64 of 31 */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", 48}, /* base64 of 34 */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd!h8=", 44},     /* not base64 */
        {"", 0},
    };
    char path[128];
    path_in_tmp(path, sizeof path, "size.key");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char key[32];
        o7_err err = {0};
        CHECK_INT(write_file(path, bad[i].text, bad[i].len, 0600), 0);
        o7_rc rc = o7_key_load(path, key, &err);
        if (rc != O7_ERR_CRYPTO)
            fprintf(stderr, "  case %zu was accepted\n", i);
        CHECK_INT(rc, O7_ERR_CRYPTO);
        CHECK(strstr(err.msg, path) != NULL);
        CHECK(bad[i].len < 8 || strstr(err.msg, bad[i].text) == NULL);
        unlink(path);
    }
}

TEST(wipe)
{
    unsigned char secret[16];
    memset(secret, 0x5a, sizeof secret);
    o7_wipe(secret, sizeof secret);
    for (size_t i = 0; i < sizeof secret; i++)
        CHECK_INT(secret[i], 0);
    o7_wipe(NULL, 0);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(sha256_vectors);
    RUN(hmac_rfc4231);
    RUN(hex_and_random);
    RUN(seal_roundtrip);
    RUN(seal_refuses_any_change);
    RUN(key_created_and_read_back);
    RUN(key_modes_despite_strict_umask);
    RUN(key_base64_accepted);
    RUN(key_open_to_others_refused);
    RUN(key_wrong_size_refused);
    RUN(wipe);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}
