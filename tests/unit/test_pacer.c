/* test_pacer.c - the quota pacer against a simulated store: the clock is
 * passed in, so whole backups' worth of requests run in microseconds. */
#include "../../core/pacer.h"
#include "check.h"

#include <stdint.h>
#include <string.h>

/* ---- a store's fixed-window rate limit, as BigCommerce describes it ---- */

typedef struct sim_store {
    int64_t quota, window_ms;
    int64_t window_end; /* 0: no window open */
    int64_t used;
    int refused;        /* 429s served */
    int64_t max_used;   /* most requests counted in one window */
} sim_store;

/* One request arriving at `now`: counts it, fills the answer's headers,
 * returns the status. */
static int sim_serve(sim_store *st, int64_t now, o7_rate_headers *h)
{
    if (st->window_end == 0 || now >= st->window_end) {
        st->window_end = now + st->window_ms;
        st->used = 0;
    }
    st->used++;
    if (st->used > st->max_used)
        st->max_used = st->used;
    int ok = st->used <= st->quota;
    h->quota = st->quota;
    h->window_ms = st->window_ms;
    h->reset_ms = st->window_end - now;
    h->left = ok ? st->quota - st->used : 0;
    h->retry_after_s = ok ? -1 : (h->reset_ms + 999) / 1000;
    if (!ok)
        st->refused++;
    return ok ? 200 : 429;
}

typedef struct flight {
    int64_t at; /* when the answer arrives */
    int status;
    o7_rate_headers h;
} flight;

typedef struct sim_result {
    int64_t finished_at; /* 1 when every request was answered, else -1 */
    int refused;
    int64_t max_inflight;
} sim_result;

/* Sends n requests with up to conc in flight, each answered latency ms
 * after it is sent, asking the pacer before each one. */
static sim_result simulate(int64_t quota, int64_t window_ms, int n, int conc, int64_t latency)
{
    sim_store st = {.quota = quota, .window_ms = window_ms};
    o7_pacer p;
    o7_pacer_init(&p);
    flight fl[64];
    int nfl = 0, done = 0, sent = 0;
    int64_t resend_after = 0;
    sim_result res = {0};
    for (int64_t now = 0; done < n && now < 10 * 60 * 1000; now++) {
        for (int i = 0; i < nfl; i++) {
            if (fl[i].at != now)
                continue;
            o7_pacer_answered(&p, now, &fl[i].h);
            if (fl[i].status == 429) {
                int64_t wait = o7_pacer_throttled(&p, now, &fl[i].h, 0.5);
                resend_after = now + wait;
                sent--; /* goes again */
            } else {
                done++;
            }
            fl[i--] = fl[--nfl];
        }
        while (sent < n && nfl < conc && now >= resend_after && o7_pacer_wait(&p, now) == 0) {
            o7_pacer_sent(&p, now);
            flight *f = &fl[nfl++];
            f->status = sim_serve(&st, now, &f->h);
            f->at = now + latency;
            sent++;
            if (nfl > res.max_inflight)
                res.max_inflight = nfl;
        }
    }
    res.finished_at = done == n ? 1 : -1;
    res.refused = st.refused;
    return res;
}

/* Like simulate, but returns the ms at which the last answer came. */
static int64_t simulate_time(int64_t quota, int64_t window_ms, int n, int conc, int64_t latency,
                             int *refused)
{
    sim_store st = {.quota = quota, .window_ms = window_ms};
    o7_pacer p;
    o7_pacer_init(&p);
    flight fl[64];
    int nfl = 0, done = 0, sent = 0;
    int64_t now = 0;
    for (; done < n && now < 10 * 60 * 1000; now++) {
        for (int i = 0; i < nfl; i++) {
            if (fl[i].at != now)
                continue;
            o7_pacer_answered(&p, now, &fl[i].h);
            if (fl[i].status == 429) {
                o7_pacer_throttled(&p, now, &fl[i].h, 0.5);
                sent--;
            } else {
                done++;
            }
            fl[i--] = fl[--nfl];
        }
        while (sent < n && nfl < conc && o7_pacer_wait(&p, now) == 0) {
            o7_pacer_sent(&p, now);
            flight *f = &fl[nfl++];
            f->status = sim_serve(&st, now, &f->h);
            f->at = now + latency;
            sent++;
        }
    }
    *refused = st.refused;
    return done == n ? now : -1;
}

static o7_rate_headers none(void)
{
    o7_rate_headers h = {-1, -1, -1, -1, -1};
    return h;
}

static o7_rate_headers report(int64_t quota, int64_t left, int64_t reset_ms)
{
    o7_rate_headers h = {quota, left, reset_ms, 30000, -1};
    return h;
}

/* ---- tests ------------------------------------------------------------------ */

TEST(never_exceeds_the_quota)
{
    /* Many shapes: tight quotas, more concurrency than quota, slow and fast
     * answers. A 429 anywhere means the pacer let one through. */
    const int64_t quotas[] = {1, 3, 10, 40, 150};
    const int concs[] = {1, 2, 6, 16};
    const int64_t lats[] = {1, 20, 250, 1500};
    for (size_t q = 0; q < sizeof quotas / sizeof quotas[0]; q++)
        for (size_t c = 0; c < sizeof concs / sizeof concs[0]; c++)
            for (size_t l = 0; l < sizeof lats / sizeof lats[0]; l++) {
                sim_result r = simulate(quotas[q], 1000, 120, concs[c], lats[l]);
                if (r.refused != 0 || r.finished_at != 1)
                    fprintf(stderr, "  quota %lld conc %d latency %lld: %d refused, %s\n",
                            (long long)quotas[q], concs[c], (long long)lats[l], r.refused,
                            r.finished_at == 1 ? "finished" : "did not finish");
                CHECK_INT(r.refused, 0);
                CHECK_INT(r.finished_at, 1);
            }
}

TEST(uses_the_quota_it_has)
{
    /* 400 requests at 40 per second: the pacer must not be so careful that
     * it idles. The tenth window starts after 9 s; counting requests in
     * flight as spent costs a little, not double. */
    int refused = -1;
    int64_t ms = simulate_time(40, 1000, 400, 6, 5, &refused);
    CHECK_INT(refused, 0);
    CHECK(ms >= 9000);
    CHECK(ms <= 14000);
    if (ms < 9000 || ms > 14000)
        fprintf(stderr, "  took %lld ms\n", (long long)ms);
}

TEST(counts_requests_in_flight)
{
    o7_pacer p;
    o7_pacer_init(&p);
    /* Nothing reported yet: one request goes to find out what is left
     * (another app may have spent the store's quota). */
    CHECK_INT(o7_pacer_wait(&p, 0), 0);
    o7_pacer_sent(&p, 0);
    CHECK(o7_pacer_wait(&p, 0) > 0);
    o7_pacer_sent(&p, 0);
    o7_pacer_sent(&p, 0);
    /* The first answer says 3 left; 2 others are still out, so 1 may go. */
    o7_rate_headers h = report(100, 3, 20000);
    o7_pacer_answered(&p, 10, &h);
    CHECK_INT(o7_pacer_wait(&p, 10), 0);
    o7_pacer_sent(&p, 10);
    CHECK(o7_pacer_wait(&p, 10) > 0);
    /* A lost request gives nothing back to the quota... */
    o7_pacer_lost(&p);
    CHECK(o7_pacer_wait(&p, 11) > 0);
}

TEST(waits_until_the_reset)
{
    o7_pacer p;
    o7_pacer_init(&p);
    o7_pacer_sent(&p, 1000);
    o7_rate_headers h = report(150, 0, 700);
    o7_pacer_answered(&p, 1000, &h);
    int64_t w = o7_pacer_wait(&p, 1000);
    CHECK(w >= 700 && w <= 702);
    CHECK(o7_pacer_wait(&p, 1500) >= 200);
    CHECK_INT(o7_pacer_wait(&p, 1702), 0);
    /* After the reset the whole quota is there again. */
    for (int i = 0; i < 150; i++) {
        CHECK_INT(o7_pacer_wait(&p, 1702), 0);
        o7_pacer_sent(&p, 1702);
    }
    CHECK(o7_pacer_wait(&p, 1702) > 0);
}

TEST(late_answers_never_raise_the_count)
{
    o7_pacer p;
    o7_pacer_init(&p);
    o7_rate_headers h = report(40, 30, 900);
    o7_pacer_sent(&p, 0);
    o7_pacer_answered(&p, 100, &h);
    for (int i = 0; i < 3; i++)
        o7_pacer_sent(&p, 100);
    /* Answers of one window arriving out of order: the one counted last
     * by the store comes first. */
    h = report(40, 20, 880);
    o7_pacer_answered(&p, 120, &h);
    h = report(40, 25, 890);
    o7_pacer_answered(&p, 121, &h);
    CHECK_INT(p.left, 18); /* 20 less the 2 still out; the 25 is older news */
    /* After our clock's refill, a late answer of the old window neither
     * brings back its count nor moves the window's end into the past. */
    for (int i = 0; i < 2; i++)
        o7_pacer_sent(&p, 2000);
    int64_t end = p.window_end;
    CHECK(end > 2000);
    h = report(40, 1, 5);
    o7_pacer_answered(&p, 2010, &h);
    CHECK_INT(p.window_end, end);
    CHECK(p.left <= 40 - 2);
    CHECK(o7_pacer_wait(&p, 2011) == 0);
}

TEST(throttle_pause_is_the_longer_of_reset_and_retry_after)
{
    o7_pacer p;
    o7_pacer_init(&p);
    o7_rate_headers h = report(150, 0, 500);
    h.retry_after_s = 2;
    CHECK_INT(o7_pacer_throttled(&p, 100, &h, 0.5), 2000);
    CHECK_INT(o7_pacer_wait(&p, 100), 2000);
    CHECK_INT(o7_pacer_wait(&p, 2099), 1);

    o7_pacer_init(&p);
    h = report(150, 0, 3000);
    h.retry_after_s = 1;
    CHECK_INT(o7_pacer_throttled(&p, 0, &h, 0.5), 3000);
    CHECK(o7_pacer_wait(&p, 2999) >= 1);
    /* Only a retry-after. */
    o7_pacer_init(&p);
    h = none();
    h.retry_after_s = 4;
    CHECK_INT(o7_pacer_throttled(&p, 0, &h, 0.5), 4000);
}

TEST(backoff_without_headers_grows)
{
    o7_pacer p;
    o7_pacer_init(&p);
    o7_rate_headers h = none();
    int64_t prev = 0;
    for (int i = 0; i < 5; i++) {
        int64_t w = o7_pacer_throttled(&p, 0, &h, 0.0);
        CHECK(w > prev);
        CHECK(w >= 1000);
        prev = w;
    }
    /* Jitter adds, never takes away, and stays under twice the base. */
    o7_pacer_init(&p);
    int64_t lo = o7_pacer_throttled(&p, 0, &h, 0.0);
    o7_pacer_init(&p);
    int64_t hi = o7_pacer_throttled(&p, 0, &h, 0.99);
    CHECK(hi > lo);
    CHECK(hi < 2 * lo);
    /* Bounded: a long storm does not wait for hours. */
    o7_pacer_init(&p);
    int64_t w = 0;
    for (int i = 0; i < 40; i++)
        w = o7_pacer_throttled(&p, 0, &h, 0.99);
    CHECK(w <= 2 * 64000);
    /* A good answer ends the storm: the next bare 429 starts small again. */
    o7_rate_headers ok = report(150, 100, 20000);
    o7_pacer_answered(&p, 0, &ok);
    CHECK_INT(o7_pacer_throttled(&p, 0, &h, 0.0), 1000);
}

int main(void)
{
    RUN(never_exceeds_the_quota);
    RUN(uses_the_quota_it_has);
    RUN(counts_requests_in_flight);
    RUN(waits_until_the_reset);
    RUN(late_answers_never_raise_the_count);
    RUN(throttle_pause_is_the_longer_of_reset_and_retry_after);
    RUN(backoff_without_headers_grows);
    return check_summary();
}
