/* result.h - the one result type of the o7 core, and the error record that
 * carries a sentence for the person reading it.
 *
 * Every fallible core function returns an o7_rc. Functions that can explain a
 * failure also take an `o7_err *err` and fill it through o7_fail(); the text
 * is meant for a merchant or an operator and never holds a secret. */
#ifndef O7_RESULT_H
#define O7_RESULT_H

#include <stddef.h>

typedef enum o7_rc {
    O7_OK = 0,
    O7_ERR_NOMEM,       /* out of memory */
    O7_ERR_USAGE,       /* bad command line */
    O7_ERR_CONFIG,      /* bad o7.conf or environment */
    O7_ERR_IO,          /* local file system */
    O7_ERR_HTTP,        /* transport or unexpected HTTP status */
    O7_ERR_AUTH,        /* token rejected or scope missing */
    O7_ERR_CORRUPT,     /* data fails its checksum, framing or syntax */
    O7_ERR_PLUGIN,      /* a plugin failed to load or a hook failed */
    O7_ERR_CATALOG,     /* SQLite */
    O7_ERR_BUSY,        /* another job holds the lock */
    O7_ERR_NOTFOUND,    /* no such store, backup, object or type */
    O7_ERR_INTERRUPTED, /* stopped by a signal */
    O7_ERR_STORAGE,     /* object storage refused or failed */
    O7_ERR_CRYPTO,      /* encryption, decryption or key file */
    O7_ERR_INTERNAL     /* a broken invariant */
} o7_rc;

/** The short English name of a result, e.g. "storage error". Static. */
const char *o7_rc_str(o7_rc rc);

/** A result with its explanation. Zero-initialise before use. */
typedef struct o7_err {
    o7_rc rc;
    char msg[1024];
} o7_err;

/** Sets err (when not NULL) to rc and the formatted sentence; returns rc.
 * The first failure wins: a later o7_fail on an err that already holds a
 * failure keeps the first sentence, so the root cause is what gets shown. */
o7_rc o7_fail(o7_err *err, o7_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Clears err to O7_OK. */
void o7_err_clear(o7_err *err);

/** Invariant check: logs and aborts when cond is false. Use for states that
 * can only come from a bug in o7, never for bad input. */
#define O7_ASSERT(cond)                                                     \
    do {                                                                    \
        if (!(cond))                                                        \
            o7_assert_fail(#cond, __FILE__, __LINE__);                      \
    } while (0)

/** Recoverable check: logs a warning with the place when cond is false and
 * evaluates to the truth of cond, so the caller can recover:
 *     if (!O7_CHECK(n <= cap)) return o7_fail(err, O7_ERR_INTERNAL, ...); */
#define O7_CHECK(cond) ((cond) ? 1 : (o7_check_fail(#cond, __FILE__, __LINE__), 0))

_Noreturn void o7_assert_fail(const char *what, const char *file, int line);
void o7_check_fail(const char *what, const char *file, int line);

#endif
