/* log.h - the one log sink of o7: C code and Lua plugins write here.
 *
 * A line carries the time, the level, a subsystem tag and, while a job runs,
 * its id. Lines go to standard error, so standard output stays free for
 * --json. The level is checked before anything is formatted. Never log a
 * token, a secret or a signed URL. */
#ifndef O7_LOG_H
#define O7_LOG_H

typedef enum o7_log_level {
    O7_LOG_DEBUG = 0,
    O7_LOG_INFO,
    O7_LOG_WARN,
    O7_LOG_ERROR,
    O7_LOG_OFF
} o7_log_level;

/** The level at and above which lines are written (default INFO). */
extern o7_log_level o7_log_min;

/** Sets the job id shown on each line; NULL clears it. The string is copied. */
void o7_log_set_job(const char *job_id);

/** Parses "debug", "info", "warn", "error" or "off"; returns -1 otherwise. */
int o7_log_level_parse(const char *name);

/** Writes one line: `2026-12-04T16:49:12Z info  engine [job] message`. */
void o7_log_write(o7_log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define o7_log(level, subsystem, ...)                                       \
    do {                                                                    \
        if ((level) >= o7_log_min)                                          \
            o7_log_write((level), (subsystem), __VA_ARGS__);                \
    } while (0)

#define o7_debug(sub, ...) o7_log(O7_LOG_DEBUG, sub, __VA_ARGS__)
#define o7_info(sub, ...) o7_log(O7_LOG_INFO, sub, __VA_ARGS__)
#define o7_warn(sub, ...) o7_log(O7_LOG_WARN, sub, __VA_ARGS__)
#define o7_error(sub, ...) o7_log(O7_LOG_ERROR, sub, __VA_ARGS__)

#endif
