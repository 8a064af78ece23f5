/* result.c - result names, error records and the two kinds of assertion. */
#include "result.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *o7_rc_str(o7_rc rc)
{
    switch (rc) {
    case O7_OK: return "ok";
    case O7_ERR_NOMEM: return "out of memory";
    case O7_ERR_USAGE: return "usage error";
    case O7_ERR_CONFIG: return "configuration error";
    case O7_ERR_IO: return "file error";
    case O7_ERR_HTTP: return "HTTP error";
    case O7_ERR_AUTH: return "authorisation error";
    case O7_ERR_CORRUPT: return "corrupt data";
    case O7_ERR_PLUGIN: return "plugin error";
    case O7_ERR_CATALOG: return "catalog error";
    case O7_ERR_BUSY: return "busy";
    case O7_ERR_NOTFOUND: return "not found";
    case O7_ERR_INTERRUPTED: return "interrupted";
    case O7_ERR_STORAGE: return "storage error";
    case O7_ERR_CRYPTO: return "crypto error";
    case O7_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

o7_rc o7_fail(o7_err *err, o7_rc rc, const char *fmt, ...)
{
    if (err == NULL || err->rc != O7_OK)
        return rc;
    err->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return rc;
}

void o7_err_clear(o7_err *err)
{
    err->rc = O7_OK;
    err->msg[0] = '\0';
}

_Noreturn void o7_assert_fail(const char *what, const char *file, int line)
{
    o7_log(O7_LOG_ERROR, "core", "invariant broken: %s at %s:%d", what, file, line);
    abort();
}

void o7_check_fail(const char *what, const char *file, int line)
{
    o7_log(O7_LOG_WARN, "core", "check failed: %s at %s:%d", what, file, line);
}
