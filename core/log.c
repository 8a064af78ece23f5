/* log.c - formats log lines to standard error. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

o7_log_level o7_log_min = O7_LOG_INFO;

static char job[64];

static const char *level_name[] = {"debug", "info", "warn", "error"};

void o7_log_set_job(const char *job_id)
{
    if (job_id == NULL)
        job[0] = '\0';
    else
        snprintf(job, sizeof job, "%s", job_id);
}

int o7_log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

void o7_log_write(o7_log_level level, const char *subsystem, const char *fmt, ...)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);

    /* Build the whole line first so concurrent writers never interleave. */
    char line[4096];
    int n = snprintf(line, sizeof line, "%s %-5s %-7s %s%s%s", stamp,
                     level_name[level < O7_LOG_OFF ? level : O7_LOG_ERROR], subsystem,
                     job[0] ? "[" : "", job, job[0] ? "] " : "");
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
