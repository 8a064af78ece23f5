/* pacer.h - keeps o7 inside a store's API quota.
 *
 * BigCommerce gives each store a quota of requests per window (e.g. 150 per
 * 30 s) shared by every app, and reports it on each response in the
 * X-Rate-Limit-* headers. The pacer turns those reports into a yes or a wait
 * before each request, so that o7 never causes a 429 its own pacing could
 * have avoided: it counts requests still in flight as spent. Pure logic with
 * the clock passed in, so it can be tested without a network. */
#ifndef O7_PACER_H
#define O7_PACER_H

#include <stdint.h>

typedef struct o7_rate_headers {
    int64_t quota;     /* X-Rate-Limit-Requests-Quota, -1 if absent */
    int64_t left;      /* X-Rate-Limit-Requests-Left, -1 if absent */
    int64_t reset_ms;  /* X-Rate-Limit-Time-Reset-Ms, -1 if absent */
    int64_t window_ms; /* X-Rate-Limit-Time-Window-Ms, -1 if absent */
    int64_t retry_after_s; /* X-Retry-After, -1 if absent */
} o7_rate_headers;

typedef struct o7_pacer {
    int64_t quota;         /* last reported, -1 before the first report */
    int64_t left;          /* requests we may still send in this window */
    int64_t window_end;    /* ms on our clock when the quota refills, 0 unknown */
    int64_t paused_until;  /* after a 429: no request before this */
    int64_t window_ms;
    int inflight;          /* sent, no answer yet */
    int backoff;           /* consecutive 429s without headers */
    uint64_t waits;        /* times a request had to wait for the quota */
} o7_pacer;

void o7_pacer_init(o7_pacer *p);
/** 0 when a request may go now, else how many ms to wait first. */
int64_t o7_pacer_wait(const o7_pacer *p, int64_t now);
/** Call when a request is sent. */
void o7_pacer_sent(o7_pacer *p, int64_t now);
/** Call with each answer's headers (any status), once per sent request. */
void o7_pacer_answered(o7_pacer *p, int64_t now, const o7_rate_headers *h);
/** Call when a request failed without an answer (it may still have counted). */
void o7_pacer_lost(o7_pacer *p);
/** After a 429: pauses every request and returns the pause in ms, taken
 * from the headers (the longer of reset and retry-after), or an exponential
 * backoff with jitter (jitter01 in [0,1)) when they are missing. */
int64_t o7_pacer_throttled(o7_pacer *p, int64_t now, const o7_rate_headers *h, double jitter01);

#endif
