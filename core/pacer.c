/* pacer.c - quota accounting from X-Rate-Limit-* headers. */
#include "pacer.h"

void o7_pacer_init(o7_pacer *p)
{
    p->quota = -1;
    p->left = -1;
    p->window_end = 0;
    p->paused_until = 0;
    p->window_ms = 30000;
    p->inflight = 0;
    p->backoff = 0;
    p->waits = 0;
}

/* A new window has begun on our clock: the whole quota is there again. */
static void refill_if_due(o7_pacer *p, int64_t now)
{
    if (p->window_end && now >= p->window_end && p->quota > 0) {
        p->left = p->quota - p->inflight;
        p->window_end = now + p->window_ms;
    }
}

int64_t o7_pacer_wait(const o7_pacer *p, int64_t now)
{
    if (now < p->paused_until)
        return p->paused_until - now;
    if (p->left < 0) /* nothing reported yet: one request finds out how much is left */
        return p->inflight > 0 ? 50 : 0;
    if (p->left > 0)
        return 0;
    if (p->window_end == 0)
        return p->inflight > 0 ? 50 : 0;
    if (now >= p->window_end)
        return 0;
    return p->window_end - now;
}

void o7_pacer_sent(o7_pacer *p, int64_t now)
{
    refill_if_due(p, now);
    p->inflight++;
    if (p->left > 0)
        p->left--;
    else if (p->left == 0)
        p->waits++; /* only reached when a window was just assumed to refill */
}

void o7_pacer_answered(o7_pacer *p, int64_t now, const o7_rate_headers *h)
{
    if (p->inflight > 0)
        p->inflight--;
    if (h->quota > 0)
        p->quota = h->quota;
    if (h->window_ms > 0)
        p->window_ms = h->window_ms;
    if (h->left >= 0)
        p->backoff = 0;
    if (h->left < 0 || h->reset_ms < 0) {
        if (h->left >= 0 && (p->left < 0 || h->left - p->inflight < p->left))
            p->left = h->left - p->inflight > 0 ? h->left - p->inflight : 0;
        return;
    }
    /* The count on this answer cannot include requests still in flight:
     * treat them as spent. */
    int64_t left = h->left - p->inflight;
    if (left < 0)
        left = 0;
    int64_t end = now + h->reset_ms + 1;
    int64_t half = p->window_ms / 2;
    if (p->left < 0 || p->window_end == 0 || end > p->window_end + half) {
        /* A window we had not seen yet. */
        p->left = left;
        p->window_end = end;
    } else if (end >= p->window_end - half) {
        /* The window we know. Answers come back out of order, and an older
         * one counts fewer requests spent, so a report only ever lowers
         * what is left; the latest end is the safe one. */
        if (left < p->left)
            p->left = left;
        if (end > p->window_end)
            p->window_end = end;
    }
    /* Else a late answer from a window already over: it says nothing about
     * this one (taking its end would refill the quota twice). */
}

void o7_pacer_lost(o7_pacer *p)
{
    if (p->inflight > 0)
        p->inflight--;
}

int64_t o7_pacer_throttled(o7_pacer *p, int64_t now, const o7_rate_headers *h, double jitter01)
{
    int64_t wait = -1;
    if (h->reset_ms >= 0)
        wait = h->reset_ms;
    if (h->retry_after_s >= 0 && h->retry_after_s * 1000 > wait)
        wait = h->retry_after_s * 1000;
    if (wait < 0) {
        /* No headers: the platform is overloaded. Back off harder each time. */
        int64_t base = 1000LL << (p->backoff < 6 ? p->backoff : 6);
        wait = base + (int64_t)(jitter01 * (double)base);
        p->backoff++;
    } else {
        p->left = 0;
        p->window_end = now + wait + 1;
    }
    if (now + wait > p->paused_until)
        p->paused_until = now + wait;
    return wait;
}
