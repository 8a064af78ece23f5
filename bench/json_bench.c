/* json_bench.c - throughput of o7_json_parse and record iteration on a v3
 * page of about 5 MB, the path every backed-up page takes.
 *
 * Build and run by hand (see bench/README.md); it is not part of ctest, so
 * no test depends on the speed of the machine. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_BYTES (5u * 1024 * 1024)
#define ROUNDS 20

/* One product as v3 sends it: long HTML, escapes, non-ASCII, nested arrays. */
static int append_record(o7_buf *b, int id)
{
    return o7_buf_printf(b,
        "{\"id\":%d,\"name\":\"Orbit Terrarium %d \\u2013 \\\"glass\\\"\",\"type\":\"physical\","
        "\"sku\":\"OTL-%d\",\"description\":\"<p>A handblown glass orb for moss, ferns and "
        "succulents. Each piece is shaped by hand \xE2\x9C\xA8 so sizes vary slightly.</p>\\r\\n"
        "<ul><li>Height: 25cm</li><li>Opening: 9cm</li><li>Care: wipe \\/ dust weekly</li>"
        "</ul><p>Ships in recycled packaging \xF0\x9F\x8C\xB1 from our workshop in "
        "Montr\xC3\xA9" "al.</p>\",\"weight\":3.25,\"width\":0,\"depth\":0.0,\"height\":12,"
        "\"price\":109.95,\"cost_price\":41.5,\"retail_price\":0,\"sale_price\":0,"
        "\"categories\":[23,18,40],\"brand_id\":7,\"inventory_level\":120,\"is_visible\":true,"
        "\"is_featured\":false,\"related_products\":[-1],\"warranty\":\"\","
        "\"search_keywords\":\"orb, glass, terrarium\",\"custom_fields\":[{\"id\":5,"
        "\"name\":\"Material\",\"value\":\"Glass\"},{\"id\":6,\"name\":\"Care\","
        "\"value\":\"Wipe\"}],\"bulk_pricing_rules\":[],\"images\":[{\"id\":300,"
        "\"product_id\":%d,\"is_thumbnail\":true,\"sort_order\":1,\"description\":\"\","
        "\"url_zoom\":\"https://cdn.example.invalid/s-abc/images/stencil/1280x1280/products/"
        "%d/300/ot__09111.1599140478.jpg?c=1\",\"date_modified\":\"2020-09-03T13:41:18+00:00\""
        "}],\"variants\":[{\"id\":%d,\"product_id\":%d,\"sku\":\"OTL-%d\",\"price\":null,"
        "\"calculated_price\":109.95,\"sale_price\":null,\"weight\":null,"
        "\"is_free_shipping\":false,\"purchasing_disabled\":false,\"cost_price\":0,"
        "\"upc\":\"\",\"mpn\":\"\",\"gtin\":\"\",\"inventory_level\":0,\"option_values\":[]}],"
        "\"meta_fields\":{},\"custom_url\":{\"url\":\"/orbit-terrarium-%d/\","
        "\"is_customized\":false},\"date_created\":\"2018-08-15T14:48:46+00:00\","
        "\"date_modified\":\"2020-09-03T13:41:18+00:00\",\"view_count\":10,"
        "\"total_sold\":3,\"reviews_rating_sum\":9,\"reviews_count\":2,"
        "\"layout_file\":\"product.html\",\"page_title\":\"\",\"meta_keywords\":[],"
        "\"condition\":\"New\"}",
        id, id, id, id, id, id + 1000, id, id, id) == O7_OK ? 0 : -1;
}

static int build_page(o7_buf *page, int *records)
{
    int n = 0;
    if (o7_buf_puts(page, "{\"data\":[") != O7_OK)
        return -1;
    while (page->len < PAGE_BYTES) {
        if ((n && o7_buf_putc(page, ',') != O7_OK) || append_record(page, 100 + n) != 0)
            return -1;
        n++;
    }
    *records = n;
    return o7_buf_printf(page, "],\"meta\":{\"pagination\":{\"total\":%d,\"count\":%d,"
                               "\"per_page\":%d,\"current_page\":1,\"total_pages\":1}}}",
                         n, n, n) == O7_OK ? 0 : -1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the engine does with a page: find data, and each record's id. */
static long iterate(const o7_json_span *root)
{
    o7_json_span data, rec, id;
    int64_t sum = 0, v;
    if (o7_json_get(root, "data", &data) != O7_OK)
        return -1;
    o7_json_iter it;
    o7_json_iter_init(&it, &data);
    while (o7_json_next(&it, NULL, &rec))
        if (o7_json_get(&rec, "id", &id) == O7_OK && o7_json_int(&id, &v) == O7_OK)
            sum += v;
    return (long)sum;
}

int main(void)
{
    o7_buf page = O7_BUF_INIT;
    int records = 0;
    if (build_page(&page, &records) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    /* The best round of each step: the machine may be busy with other
     * work, and the fastest round is the one least disturbed by it. */
    double parse_s = 1e9, iter_s = 1e9, both_s = 1e9;
    long check = 0;
    for (int round = 0; round < ROUNDS; round++) {
        o7_json_span root;
        o7_err err = {0};
        double t0 = now();
        if (o7_json_parse(page.data, page.len, &root, &err) != O7_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = now();
        check = iterate(&root);
        double t2 = now();
        parse_s = t1 - t0 < parse_s ? t1 - t0 : parse_s;
        iter_s = t2 - t1 < iter_s ? t2 - t1 : iter_s;
        both_s = t2 - t0 < both_s ? t2 - t0 : both_s;
    }

    double mb = (double)page.len / 1e6;
    printf("page: %.2f MB, %d records, id sum %ld, best of %d rounds\n", mb, records, check,
           ROUNDS);
    printf("parse:           %6.0f MB/s\n", mb / parse_s);
    printf("iterate + ids:   %6.0f MB/s\n", mb / iter_s);
    printf("parse + iterate: %6.0f MB/s\n", mb / both_s);
    o7_buf_free(&page);
    return 0;
}
